"""Who is looking at a console page: the access cookie, the login redirect and section roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request
from starlette.responses import Response

from broadcast.auth.models import User
from broadcast.auth.security import issue_access_token
from broadcast.config import Settings
from broadcast.console.nav import Section
from broadcast.console.templating import Viewer
from broadcast.deps import ACCESS_COOKIE, SessionDep, SettingsDep, get_current_user
from broadcast.errors import Unauthorized

LOGIN_URL = "/console/login"
HOME_URL = "/console/"


class LoginRequired(Exception):
    """No valid access cookie: the page answers with a redirect to the login form."""


class PageForbidden(Exception):
    """The user's role may not open this section: the page answers 403."""

    def __init__(self, user: User, section: Section) -> None:
        super().__init__(section.key)
        self.viewer = Viewer.of(user)
        self.section = section


def console_user(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    """The signed-in user; an absent, expired or forged cookie sends the browser to the login form."""
    try:
        user = get_current_user(request, session, settings, None)
    except Unauthorized as exc:
        raise LoginRequired(exc.message) from exc
    request.state.viewer = Viewer.of(user)
    return user


ConsoleUser = Annotated[User, Depends(console_user)]


def require_section(section: Section) -> Callable[[User], User]:
    def dependency(user: ConsoleUser) -> User:
        if not section.allows(user.role):
            raise PageForbidden(user, section)
        return user

    return dependency


def safe_next(target: str | None) -> str:
    """Only a console path on this server, so the login form cannot bounce a user elsewhere."""
    if not target:
        return HOME_URL
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console") or "\\" in target:
        return HOME_URL
    if parts.path.startswith(LOGIN_URL):
        return HOME_URL
    return target


def login_url(next_path: str) -> str:
    return f"{LOGIN_URL}?{urlencode({'next': safe_next(next_path)})}"


def requested_path(request: Request) -> str:
    """The page the user was on; for an htmx swap, the page that made the request."""
    current = request.headers.get("HX-Current-URL")
    if request.headers.get("HX-Request") == "true" and current:
        parts = urlsplit(current)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def set_access_cookie(response: Response, request: Request, *, user: User, settings: Settings) -> None:
    token, _ = issue_access_token(
        user_id=user.id or 0,
        role=user.role.value,
        secret=settings.secret_key,
        minutes=settings.access_token_minutes,
    )
    response.set_cookie(
        ACCESS_COOKIE,
        token,
        max_age=settings.access_token_minutes * 60,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_access_cookie(response: Response) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/", httponly=True, samesite="lax")
