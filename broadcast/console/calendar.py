"""播出日历 (/console/calendar): month and week views of what the campaigns plan to play.

Each submitted, approved or active campaign's recurrence is expanded over the visible days with the
pure core (:func:`expand`), so the calendar shows what the rules ask for; what actually plays on a
speaker (windows, quiet hours, bumps) is the rundown, one click away in 播出查询. A town or village
filter keeps the campaigns whose target reaches it (from the targets preview).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.responses import Response

from broadcast.auth.models import User
from broadcast.clock import utc_now
from broadcast.console import endpoints as endpoint_pages
from broadcast.console.access import require_section
from broadcast.console.nav import section_named
from broadcast.console.templating import render
from broadcast.deps import SessionDep, SettingsDep
from broadcast.errors import Invalid
from broadcast.regions import service as regions
from broadcast.scheduling.models import Campaign, CampaignStatus
from broadcast.scheduling.presets import describe
from broadcast.scheduling.recurrence import expand
from broadcast.scheduling.schemas import STATUS_NAMES
from broadcast.scheduling.service import list_by_status, recurrence_of
from broadcast.targets import service as targets
from broadcast.targets.schemas import Selector

CALENDAR = section_named("calendar")
CalendarUser = Annotated[User, Depends(require_section(CALENDAR))]
PAGE_URL = "/console/calendar"
SHOWN = (CampaignStatus.submitted, CampaignStatus.approved, CampaignStatus.active)
COLOURS = 8
WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")

router = APIRouter()


class CalendarQuery(BaseModel):
    view: Literal["month", "week"] = "month"
    day: date | None = None
    town: str = Field(default="", max_length=12)
    village: str = Field(default="", max_length=12)

    def url(self, **changes: object) -> str:
        values = {**self.model_dump(mode="json"), **changes}
        kept = {key: value for key, value in values.items() if value}
        return f"{PAGE_URL}?{urlencode(kept)}"


@dataclass(frozen=True)
class Shown:
    """A campaign on the calendar: its colour, status and rule in words."""

    campaign: Campaign
    colour: int
    status_name: str
    rule: str


@dataclass
class Entry:
    """One campaign's plays on one day."""

    shown: Shown
    times: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Day:
    day: date
    in_range: bool
    entries: list[Entry]


def _reaches(session: Session, campaign: Campaign, *, town: str, village: str) -> bool:
    if not town and not village:
        return True
    try:
        preview = targets.preview(session, selector=Selector.model_validate(campaign.selector))
    except Invalid:
        return False
    if village:
        return any(row.code == village for row in preview.villages)
    return any(row.code == town for row in preview.towns)


def plays_by_day(
    session: Session, *, first: date, last: date, tz: tzinfo, town: str = "", village: str = ""
) -> tuple[list[Shown], dict[date, list[Entry]]]:
    """The shown campaigns and, per local day in [first, last], each one's planned times."""
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    shown: list[Shown] = []
    days: dict[date, list[Entry]] = defaultdict(list)
    for campaign in list_by_status(session, SHOWN):
        if not _reaches(session, campaign, town=town, village=village):
            continue
        rule = recurrence_of(campaign, tz=tz)
        item = Shown(campaign, (campaign.id or 0) % COLOURS, STATUS_NAMES[campaign.status], describe(rule))
        shown.append(item)
        per_day: dict[date, Entry] = {}
        for at in expand(rule, window_start=start, window_end=end):
            local = at.astimezone(tz)
            per_day.setdefault(local.date(), Entry(item)).times.append(f"{local:%H:%M}")
        for day, entry in per_day.items():
            days[day].append(entry)
    for entries in days.values():
        entries.sort(key=lambda entry: (entry.times[0], entry.shown.campaign.id or 0))
    return shown, days


def visible_range(query: CalendarQuery, today: date) -> tuple[date, date, date, date]:
    """(first shown, last shown, previous page's day, next page's day): whole Monday-first weeks."""
    anchor = query.day or today
    if query.view == "week":
        monday = anchor - timedelta(days=anchor.weekday())
        return monday, monday + timedelta(days=6), monday - timedelta(days=7), monday + timedelta(days=7)
    month_first = anchor.replace(day=1)
    next_month = (month_first + timedelta(days=32)).replace(day=1)
    first = month_first - timedelta(days=month_first.weekday())
    month_last = next_month - timedelta(days=1)
    last = month_last + timedelta(days=6 - month_last.weekday())
    previous = (month_first - timedelta(days=1)).replace(day=1)
    return first, last, previous, next_month


def _month_of(query: CalendarQuery, today: date) -> tuple[int, int]:
    anchor = query.day or today
    return anchor.year, anchor.month


@router.get("/calendar")
def calendar_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: CalendarUser,
    query: Annotated[CalendarQuery, Query()],
) -> Response:
    today = utc_now().astimezone(settings.tz).date()
    first, last, previous, following = visible_range(query, today)
    shown, days = plays_by_day(
        session, first=first, last=last, tz=settings.tz, town=query.town, village=query.village
    )
    year, month = _month_of(query, today)
    in_range = (lambda d: d.month == month) if query.view == "month" else (lambda d: True)
    grid = [
        Day(
            first + timedelta(days=i),
            in_range(first + timedelta(days=i)),
            days.get(first + timedelta(days=i), []),
        )
        for i in range((last - first).days + 1)
    ]
    title = f"{year} 年 {month} 月" if query.view == "month" else f"{first:%Y-%m-%d} 至 {last:%Y-%m-%d}"
    return render(
        request,
        "calendar.html",
        user=user,
        section=CALENDAR,
        query=query,
        title=title,
        weeks=[grid[i : i + 7] for i in range(0, len(grid), 7)],
        weekdays=WEEKDAYS,
        shown=shown,
        today=today,
        prev_url=query.url(day=previous.isoformat()),
        next_url=query.url(day=following.isoformat()),
        today_url=query.url(day=None),
        towns=regions.list_towns(session, scope=None),
        village_groups=endpoint_pages.village_groups(session, scope=None, town=query.town),
    )


@router.get("/calendar/day")
def calendar_day(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: CalendarUser,
    query: Annotated[CalendarQuery, Query()],
) -> Response:
    """One day's plays, listed by time (the side panel a click on a day fills)."""
    day = query.day or utc_now().astimezone(settings.tz).date()
    _, days = plays_by_day(
        session, first=day, last=day, tz=settings.tz, town=query.town, village=query.village
    )
    plays = sorted(
        ((at, entry.shown) for entry in days.get(day, []) for at in entry.times),
        key=lambda play: (play[0], play[1].campaign.id or 0),
    )
    return render(
        request, "calendar_day.html", user=user, section=CALENDAR, day=day, plays=plays, query=query
    )
