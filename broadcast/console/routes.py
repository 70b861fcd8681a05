"""The server-rendered zh-CN console: login, the frame and its pages, under /console."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from broadcast.auth import service as auth_service
from broadcast.auth.models import User
from broadcast.console import alerts as alert_pages
from broadcast.console import bulletins as bulletin_pages
from broadcast.console import calendar as calendar_pages
from broadcast.console import campaigns as campaign_pages
from broadcast.console import endpoint_detail, playlog_pages, why_page
from broadcast.console import endpoints as endpoint_pages
from broadcast.console import library as library_pages
from broadcast.console import playlists as playlist_pages
from broadcast.console.access import (
    LOGIN_URL,
    clear_access_cookie,
    require_section,
    safe_next,
    set_access_cookie,
)
from broadcast.console.dashboard import dashboard_counts
from broadcast.console.handlers import install_console_handlers
from broadcast.console.nav import home_url, section_named
from broadcast.console.templating import STATIC_DIR, is_htmx, render
from broadcast.deps import SessionDep, SettingsDep, village_scope
from broadcast.errors import TooManyRequests, Unauthorized
from broadcast.regions.models import TAG_LABELS

router = APIRouter(prefix="/console", include_in_schema=False)

DASHBOARD = section_named("dashboard")
ENDPOINTS = section_named("endpoints")
DashboardUser = Annotated[User, Depends(require_section(DASHBOARD))]
EndpointsUser = Annotated[User, Depends(require_section(ENDPOINTS))]


def _login_page(
    request: Request, *, next_url: str, username: str = "", error: str | None = None, status_code: int = 200
) -> Response:
    return render(
        request,
        "login.html",
        user=None,
        status_code=status_code,
        # Empty stays empty: the login then lands on the user's own home page.
        next=safe_next(next_url) if next_url else "",
        username=username,
        error=error,
    )


@router.get("/login")
def login_form(
    request: Request, next_url: Annotated[str, Query(alias="next", max_length=2048)] = ""
) -> Response:
    return _login_page(request, next_url=next_url)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2048)] = "",
) -> Response:
    if not username.strip() or not password:
        return _login_page(
            request, next_url=next_url, username=username, error="请输入用户名和密码", status_code=422
        )
    address = request.client.host if request.client else "unknown"
    try:
        user = auth_service.authenticate(
            session, username=username.strip(), password=password, address=address, settings=settings
        )
    except (Unauthorized, TooManyRequests) as exc:
        return _login_page(
            request, next_url=next_url, username=username, error=exc.message, status_code=exc.status_code
        )
    response = RedirectResponse(safe_next(next_url or home_url(user.role)), status_code=303)
    set_access_cookie(response, request, user=user, settings=settings)
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse(LOGIN_URL, status_code=303)
    clear_access_cookie(response)
    return response


@router.get("/")
def dashboard(request: Request, session: SessionDep, user: DashboardUser) -> Response:
    scope = village_scope(session, user)
    counts = dashboard_counts(session, scope=scope)
    return render(
        request, "dashboard.html", user=user, section=DASHBOARD, counts=counts, scoped=scope is not None
    )


@router.get("/endpoints")
def endpoint_list(
    request: Request,
    session: SessionDep,
    user: EndpointsUser,
    query: Annotated[endpoint_pages.EndpointQuery, Query()],
) -> Response:
    scope = village_scope(session, user)
    listing = endpoint_pages.list_page(session, query=query, scope=scope)
    labels: dict[str, Any] = {
        "listing": listing,
        "tag_labels": TAG_LABELS,
        "status_labels": endpoint_pages.STATUS_LABELS,
    }
    if is_htmx(request):
        fragment = render(request, "_endpoint_results.html", user=user, section=ENDPOINTS, **labels)
        # The address bar shows the tidy query rather than the form's empty fields.
        fragment.headers["HX-Push-Url"] = listing.url
        return fragment
    choices = endpoint_pages.filter_choices(session, scope=scope, town=query.town)
    return render(
        request,
        "endpoints.html",
        user=user,
        section=ENDPOINTS,
        query=query,
        scoped=scope is not None,
        towns=choices.towns,
        village_groups=choices.village_groups,
        selected_village=query.village,
        **labels,
    )


@router.get("/endpoints/villages")
def village_options(
    request: Request,
    session: SessionDep,
    user: EndpointsUser,
    town: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    groups = endpoint_pages.village_groups(session, scope=village_scope(session, user), town=town)
    return render(request, "_village_select.html", user=user, village_groups=groups, selected_village="")


for content_router in (
    library_pages.router,
    bulletin_pages.router,
    playlist_pages.router,
    endpoint_detail.router,
):
    router.include_router(content_router)

for schedule_router in (campaign_pages.router, calendar_pages.router, why_page.router):
    router.include_router(schedule_router)

router.include_router(alert_pages.router)
router.include_router(playlog_pages.router)


def mount_console(app: FastAPI) -> None:
    """Adds the console's pages and static files to the app."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    install_console_handlers(app)
