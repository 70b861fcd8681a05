"""播出查询 (/console/rundowns): what plays on an endpoint or in a village on a day, and why.

Everyone signed in may ask; a village admin only about her own villages (the regions service
refuses the others, and its message is shown beside the form). The answer comes from the why
service: the stored rundown, or a forecast beyond it. The village's .ics feed is offered too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from jinja2 import pass_context
from jinja2.runtime import Context
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.responses import Response

from broadcast.auth.models import User
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.console import endpoints as endpoint_pages
from broadcast.console.access import require_section
from broadcast.console.library import attempt, respond
from broadcast.console.nav import CONTENT_STAFF, STAFF, section_named
from broadcast.console.templating import templates
from broadcast.deps import SessionDep, SettingsDep, village_scope
from broadcast.errors import BroadcastError
from broadcast.regions import service as regions
from broadcast.scheduling import why
from broadcast.scheduling.why import WhyDay

RUNDOWNS = section_named("rundowns")
RundownsUser = Annotated[User, Depends(require_section(RUNDOWNS))]

router = APIRouter()


@pass_context
def local_hm(context: Context, value: datetime) -> str:
    """An instant as the city's HH:MM (the rundown stores UTC)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(context["request"].app.state.settings.tz).strftime("%H:%M")


templates.env.filters["local_hm"] = local_hm


class WhyQuery(BaseModel):
    town: str = Field(default="", max_length=12)
    village: str = Field(default="", max_length=12)
    endpoint: str = Field(default="", max_length=32)
    day: date | None = None


def answer(
    session: Session, settings: Settings, *, query: WhyQuery, day: date, scope: frozenset[int] | None
) -> WhyDay:
    """The endpoint's day when a code is given, else the village's."""
    if query.endpoint.strip():
        endpoint = regions.get_endpoint_or_raise(session, query.endpoint.strip(), scope=scope)
        return why.endpoint_day(session, settings=settings, endpoint=endpoint, day=day)
    village = regions.get_village_or_raise(session, query.village, scope=scope)
    return why.village_day(session, settings=settings, village=village, day=day)


@router.get("/rundowns")
def rundown_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: RundownsUser,
    query: Annotated[WhyQuery, Query()],
) -> Response:
    scope = village_scope(session, user)
    day = query.day or utc_now().astimezone(settings.tz).date()
    result = None
    if query.endpoint.strip() or query.village:
        result = attempt(session, lambda: answer(session, settings, query=query, day=day, scope=scope))
    found = result if isinstance(result, WhyDay) else None
    return respond(
        request,
        "why.html",
        user=user,
        section=RUNDOWNS,
        error=result if isinstance(result, BroadcastError) else None,
        query=query,
        day=day,
        result=found,
        plays=[line for line in found.lines if line.plays] if found else [],
        dropped=[line for line in found.lines if not line.plays] if found else [],
        towns=regions.list_towns(session, scope=scope),
        village_groups=endpoint_pages.village_groups(session, scope=scope, town=query.town),
        campaign_links=user.role in STAFF,
        playlist_links=user.role in CONTENT_STAFF,
    )
