"""The console's Jinja2 environment: templates, display filters and the page context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.responses import Response

from broadcast.auth.models import ROLE_LABELS, Role, User
from broadcast.console.nav import Section, visible_sections

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
HTMX_VERSION = "2.0.11"

templates = Jinja2Templates(directory=HERE / "templates")


@dataclass(frozen=True)
class Viewer:
    """What the frame shows of the signed-in user; plain values outlive the request's session."""

    display_name: str
    role: Role

    @classmethod
    def of(cls, user: User | Viewer) -> Viewer:
        return user if isinstance(user, Viewer) else cls(display_name=user.display_name, role=user.role)


@pass_context
def local_time(context: Context, value: datetime | None) -> str:
    """Aware UTC from the database, shown in the city's zone (settings.timezone)."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    tz = context["request"].app.state.settings.tz
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


templates.env.filters["local_time"] = local_time
templates.env.globals["htmx_version"] = HTMX_VERSION


def is_htmx(request: Request) -> bool:
    """A swap request from htmx (a history restore needs the whole page instead)."""
    headers = request.headers
    return headers.get("HX-Request") == "true" and headers.get("HX-History-Restore-Request") != "true"


def render(
    request: Request,
    name: str,
    *,
    user: User | Viewer | None,
    section: Section | None = None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    viewer = Viewer.of(user) if user else None
    frame: dict[str, Any] = {
        "user": viewer,
        "role_label": ROLE_LABELS[viewer.role] if viewer else "",
        "sections": visible_sections(viewer.role) if viewer else [],
        "current": section,
    }
    response = templates.TemplateResponse(request, name, {**frame, **context}, status_code=status_code)
    response.headers["Vary"] = "HX-Request"
    response.headers["Cache-Control"] = "no-store"
    return response
