"""The rundown "why" views under /api/v1: what plays on an endpoint or in a village on a day, and why.

Anyone signed in may ask; a village admin only about the villages in her scope (403 otherwise).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from broadcast.clock import utc_now
from broadcast.deps import CurrentUser, ScopeDep, SessionDep, SettingsDep
from broadcast.regions.service import get_endpoint_or_raise, get_village_or_raise
from broadcast.scheduling import why
from broadcast.scheduling.why import WhyDay

router = APIRouter(tags=["rundowns"])
DayQuery = Annotated[date | None, Query(alias="date", description="本地日期 YYYY-MM-DD，默认今天")]


@router.get("/rundowns/endpoints/{code}", response_model=WhyDay)
def endpoint_rundown(
    code: str,
    session: SessionDep,
    settings: SettingsDep,
    _: CurrentUser,
    scope: ScopeDep,
    day: DayQuery = None,
) -> WhyDay:
    endpoint = get_endpoint_or_raise(session, code, scope=scope)
    local_day = day or utc_now().astimezone(settings.tz).date()
    return why.endpoint_day(session, settings=settings, endpoint=endpoint, day=local_day)


@router.get("/rundowns/villages/{code}", response_model=WhyDay)
def village_rundown(
    code: str,
    session: SessionDep,
    settings: SettingsDep,
    _: CurrentUser,
    scope: ScopeDep,
    day: DayQuery = None,
) -> WhyDay:
    village = get_village_or_raise(session, code, scope=scope)
    local_day = day or utc_now().astimezone(settings.tz).date()
    return why.village_day(session, settings=settings, village=village, day=local_day)
