"""播放记录 (/console/playlog) and 统计报表 (/console/reports): what actually played.

The village page puts one village's day side by side: each planned slot and what became of it,
the alerts it heard, the speakers that are dead now, and the raw log one keyset page at a time.
The reports page shows the four reports of the play log API. Both call the same query and report
functions as the API, with the same scope: a village admin naming another village gets the API's
403 (as a page); the export buttons are links to the API, which accepts the console's cookie.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select as sql_select
from sqlmodel import Session, col
from starlette.responses import Response

from broadcast.alerts.models import LEVEL_COLOURS, LEVEL_NAMES
from broadcast.auth.models import User
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.console import endpoints as endpoint_pages
from broadcast.console.access import require_section
from broadcast.console.library import attempt, respond
from broadcast.console.nav import section_named
from broadcast.console.templating import render, templates
from broadcast.deps import SessionDep, SettingsDep, village_scope
from broadcast.errors import BroadcastError, Forbidden
from broadcast.playlog import exports, queries, reports
from broadcast.playlog.outcomes import MissCause, Outcome
from broadcast.playlog.queries import EventFilters, Place, SlotFilters, TimeRange
from broadcast.playlog.schemas import HealthRow, SlotRowOut
from broadcast.regions import service as regions
from broadcast.regions.models import Town, Village
from broadcast.scheduling.models import Campaign

PLAYLOG = section_named("playlog")
REPORTS = section_named("reports")
PlaylogUser = Annotated[User, Depends(require_section(PLAYLOG))]
ReportsUser = Annotated[User, Depends(require_section(REPORTS))]

EVENTS_PAGE = 50
SLOTS_SHOWN = 500  # a village's day; beyond it the page points to the export
ROWS_SHOWN = 500  # a report's table; the export has every row
HEALTH_DAYS = 7  # how far back "chronically offline" looks on the village page
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
REPORT_VIEWS = {"coverage": "播出覆盖", "daily": "每日汇总", "alerts": "紧急插播送达", "health": "终端在线"}
# The API path of each report's export.
REPORT_APIS = {
    "coverage": "/api/v1/reports/coverage",
    "daily": "/api/v1/reports/daily",
    "alerts": "/api/v1/reports/alerts",
    "health": "/api/v1/reports/health",
}

router = APIRouter()


# Wording -----------------------------------------------------------------------------------------


def since_text(moment: datetime, *, now: datetime, tz: ZoneInfo) -> str:
    """A past instant as a person says it: 今天 / 昨天 16:02 within two days, 周二 16:02 within a
    week (unambiguous), else the date."""
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(tz)
    days = (now.astimezone(tz).date() - local.date()).days
    clock = f"{local:%H:%M}"
    if days == 0:
        return f"今天 {clock}"
    if days == 1:
        return f"昨天 {clock}"
    if 1 < days < 7:
        return f"{WEEKDAYS[local.weekday()]} {clock}"
    if local.year == now.astimezone(tz).year:
        return f"{local.month}月{local.day}日 {clock}"
    return f"{local.year}年{local.month}月{local.day}日 {clock}"


def outcome_text(row: SlotRowOut, *, now: datetime, tz: ZoneInfo) -> str:
    """The slot's outcome in the village page's words."""
    if row.status == Outcome.played:
        return "已播"
    if row.status == Outcome.partial:
        return "部分"
    if row.status == Outcome.failed:
        return f"失败（{row.cause}）" if row.cause else "失败"
    if row.status == Outcome.missed and row.cause == MissCause.offline:
        if row.offline_since is None:
            return "未播（离线）"
        return f"未播（离线，自 {since_text(row.offline_since, now=now, tz=tz)} 起）"
    if row.status == Outcome.missed:
        return "未播（在线但未播）"
    return "待核对"


def dead_text(row: HealthRow, *, now: datetime, tz: ZoneInfo, days: int) -> str:
    """Why a speaker is listed among the dead ones."""
    if row.status == "online":
        return f"近 {days} 天在线率 {row.online_pct:.1f}%"
    label = {"offline": "离线", "fault": "故障", "disabled": "停用"}.get(row.status, row.status)
    if row.offline_since is not None:
        return f"{label}自 {since_text(row.offline_since, now=now, tz=tz)}"
    if row.last_seen_at is None:
        return f"{label}，从未上线"
    return f"{label}，最后在线 {since_text(row.last_seen_at, now=now, tz=tz)}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


templates.env.filters["pct"] = pct
templates.env.globals["level_names"] = LEVEL_NAMES
templates.env.globals["level_colours"] = LEVEL_COLOURS


# Shared pieces -------------------------------------------------------------------------------------


def _today(settings: Settings) -> date:
    return utc_now().astimezone(settings.tz).date()


def _days(first: date, last: date, settings: Settings) -> TimeRange:
    return queries.parse_range(first.isoformat(), last.isoformat(), tz=settings.tz, now=utc_now())


def last_month(today: date) -> tuple[date, date]:
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def api_link(path: str, **params: Any) -> str:
    """An API address with the non-empty parameters (dates as YYYY-MM-DD)."""
    shown = {name: str(value) for name, value in params.items() if value not in (None, "")}
    return f"{path}?{urlencode(shown)}"


@dataclass(frozen=True)
class ExportLink:
    label: str
    url: str
    testid: str


def _village_of(session: Session, village_id: int) -> tuple[Village, Town]:
    village = session.get_one(Village, village_id)
    return village, session.get_one(Town, village.town_id)


# 播放记录: one village's day ------------------------------------------------------------------------


class VillageQuery(BaseModel):
    village: str = Field(default="", max_length=12)
    day: date | None = None


def _only_village(session: Session, scope: frozenset[int] | None) -> str:
    """A village admin with a single village needs no picker."""
    if scope is None or len(scope) != 1:
        return ""
    return session.get_one(Village, next(iter(scope))).code


def _dead_speakers(
    session: Session, settings: Settings, *, place: Place, today: date, now: datetime
) -> list[tuple[HealthRow, str]]:
    window = _days(today - timedelta(days=HEALTH_DAYS - 1), today, settings)
    report = reports.health(
        session,
        window=window,
        place=place,
        now=now,
        threshold_pct=settings.play_log_chronic_online_pct,
        offline_days=settings.play_log_chronic_offline_days,
        chronic_only=False,
    )
    return [
        (row, dead_text(row, now=now, tz=settings.tz, days=HEALTH_DAYS))
        for row in report.rows
        if row.chronic or row.status != "online"
    ]


def _village_exports(village: str, today: date) -> list[ExportLink]:
    first, last = last_month(today)
    span = {"from": first.isoformat(), "to": last.isoformat(), "village": village}
    month = f"{first.month}月"
    return [
        ExportLink(
            f"{month}播放记录 XLSX", api_link("/api/v1/playlog", **span, format="xlsx"), "export-log-xlsx"
        ),
        ExportLink(
            f"{month}播放记录 CSV", api_link("/api/v1/playlog", **span, format="csv"), "export-log-csv"
        ),
        ExportLink(
            f"{month}计划与实播 XLSX",
            api_link("/api/v1/playlog/slots", **span, format="xlsx"),
            "export-slots-xlsx",
        ),
        ExportLink(
            f"{month}播出覆盖 XLSX",
            api_link("/api/v1/reports/coverage", **span, format="xlsx"),
            "export-coverage-xlsx",
        ),
    ]


def _events_url(village: str, day: date, cursor: str) -> str:
    return api_link("/console/playlog/events", village=village, day=day.isoformat(), cursor=cursor)


@router.get("/playlog")
def village_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: PlaylogUser,
    query: Annotated[VillageQuery, Query()],
) -> Response:
    scope = village_scope(session, user)
    now, today = utc_now(), _today(settings)
    day = query.day or today
    code = query.village or _only_village(session, scope)
    context: dict[str, Any] = {
        "village_groups": endpoint_pages.village_groups(session, scope=scope, town=""),
        "code": code,
        "day": day,
        "today": today,
    }
    if not code:
        return render(request, "playlog.html", user=user, section=PLAYLOG, village=None, **context)
    place = queries.resolve_place(session, scope=scope, town=None, village=code, endpoint=None)
    village, town = _village_of(session, place.village_id or 0)
    window = _days(day, day, settings)
    slots = queries.slots(session, SlotFilters(window=window, place=place), limit=SLOTS_SHOWN, cursor=None)
    events = queries.play_events(
        session, EventFilters(window=window, place=place), limit=EVENTS_PAGE, cursor=None
    )
    return render(
        request,
        "playlog.html",
        user=user,
        section=PLAYLOG,
        village=village,
        town=town,
        slots=[(row, outcome_text(row, now=now, tz=settings.tz)) for row in slots.items],
        slots_total=slots.total,
        counts=_slot_counts(slots.items),
        alerts=reports.alerts(session, window=window, place=place, drill=None).rows,
        dead=_dead_speakers(session, settings, place=place, today=today, now=now),
        health_days=HEALTH_DAYS,
        events=events,
        more_url=_events_url(code, day, events.next_cursor) if events.next_cursor else None,
        exports=_village_exports(code, today),
        reports_url=api_link(
            "/console/reports", village=code, **{"from": last_month(today)[0], "to": last_month(today)[1]}
        ),
        **context,
    )


def _slot_counts(rows: list[SlotRowOut]) -> dict[str, int]:
    counts = dict.fromkeys(queries.SLOT_STATUSES, 0)
    for row in rows:
        counts[row.status] += 1
    return counts


class EventsQuery(BaseModel):
    village: str = Field(max_length=12)
    day: date
    cursor: str = Field(max_length=200)


@router.get("/playlog/events")
def more_events(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: PlaylogUser,
    query: Annotated[EventsQuery, Query()],
) -> Response:
    """The next page of the raw log, as table rows ending with the next 更多 row."""
    scope = village_scope(session, user)
    place = queries.resolve_place(session, scope=scope, town=None, village=query.village, endpoint=None)
    window = _days(query.day, query.day, settings)
    events = queries.play_events(
        session, EventFilters(window=window, place=place), limit=EVENTS_PAGE, cursor=query.cursor
    )
    more = _events_url(query.village, query.day, events.next_cursor) if events.next_cursor else None
    return render(request, "playlog_events.html", user=user, section=PLAYLOG, events=events, more_url=more)


# 统计报表 -------------------------------------------------------------------------------------------


class ReportQuery(BaseModel):
    view: str = Field(default="coverage", max_length=16)
    start: str = Field(default="", alias="from", max_length=10)
    end: str = Field(default="", alias="to", max_length=10)
    town: str = Field(default="", max_length=12)
    village: str = Field(default="", max_length=12)
    campaign: int | None = None
    chronic: bool = False


def _campaigns(session: Session) -> list[tuple[int, str]]:
    rows = session.execute(sql_select(col(Campaign.id), col(Campaign.name)).order_by(col(Campaign.name)))
    return [(int(campaign_id), str(name)) for campaign_id, name in rows.all()]


def _report(
    session: Session, settings: Settings, query: ReportQuery, *, window: TimeRange, place: Place
) -> Any:
    now = utc_now()
    if query.view == "daily":
        return reports.daily(session, window=window, place=place, now=now)
    if query.view == "alerts":
        return reports.alerts(session, window=window, place=place, drill=None)
    if query.view == "health":
        return reports.health(
            session,
            window=window,
            place=place,
            now=now,
            threshold_pct=settings.play_log_chronic_online_pct,
            offline_days=settings.play_log_chronic_offline_days,
            chronic_only=query.chronic,
        )
    queries.check_campaign(session, query.campaign)
    return reports.coverage(session, window=window, place=place, campaign=query.campaign)


def _report_exports(query: ReportQuery, start: str, end: str) -> list[ExportLink]:
    params: dict[str, Any] = {"from": start, "to": end, "town": query.town, "village": query.village}
    if query.view == "coverage":
        params["campaign"] = query.campaign
    if query.view == "health" and query.chronic:
        params["chronic"] = "true"
    path = REPORT_APIS[query.view]
    return [
        ExportLink("导出 XLSX", api_link(path, **params, format="xlsx"), "report-xlsx"),
        ExportLink("导出 CSV", api_link(path, **params, format="csv"), "report-csv"),
    ]


def _filters(query: ReportQuery, start: str, end: str) -> dict[str, Any]:
    return {
        "from": start,
        "to": end,
        "town": query.town,
        "village": query.village,
        "campaign": query.campaign,
    }


@router.get("/reports")
def report_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: ReportsUser,
    query: Annotated[ReportQuery, Query()],
) -> Response:
    scope = village_scope(session, user)
    today = _today(settings)
    view = query.view if query.view in REPORT_VIEWS else "coverage"
    query = query.model_copy(update={"view": view})
    start = query.start or (today - timedelta(days=6)).isoformat()
    end = query.end or today.isoformat()

    def build() -> Any:
        window = queries.parse_range(start, end, tz=settings.tz, now=utc_now())
        place = queries.resolve_place(
            session, scope=scope, town=query.town or None, village=query.village or None, endpoint=None
        )
        return _report(session, settings, query, window=window, place=place)

    result = attempt(session, build)
    if isinstance(result, Forbidden):
        raise result
    error = result if isinstance(result, BroadcastError) else None
    report = None if error else result
    links = {
        key: api_link("/console/reports", **{**_filters(query, start, end), "view": key})
        for key in REPORT_VIEWS
    }
    return respond(
        request,
        "reports.html",
        user=user,
        section=REPORTS,
        error=error,
        query=query,
        start=start,
        end=end,
        views=REPORT_VIEWS,
        view_links=links,
        report=report,
        rows_shown=ROWS_SHOWN,
        exports=[] if error else _report_exports(query, start, end),
        towns=regions.list_towns(session, scope=scope),
        village_groups=endpoint_pages.village_groups(session, scope=scope, town=query.town),
        campaigns=_campaigns(session),
        status_labels=exports.ENDPOINT_STATUS_LABELS,
        place_params=urlencode({k: v for k, v in (("town", query.town), ("village", query.village)) if v}),
    )


class PlaceQuery(BaseModel):
    town: str = Field(default="", max_length=12)
    village: str = Field(default="", max_length=12)


@router.get("/reports/alerts/{alert_id}")
def alert_report_page(
    alert_id: int,
    request: Request,
    session: SessionDep,
    user: ReportsUser,
    query: Annotated[PlaceQuery, Query()],
) -> Response:
    """One alert, per endpoint of the viewer's scope: latencies, and the speakers it never reached."""
    scope = village_scope(session, user)
    place = queries.resolve_place(
        session, scope=scope, town=query.town or None, village=query.village or None, endpoint=None
    )
    report = reports.alert_delivery(session, alert_id=alert_id, place=place)
    params = {"town": query.town, "village": query.village}
    path = f"/api/v1/reports/alerts/{alert_id}"
    return render(
        request,
        "reports_alert.html",
        user=user,
        section=REPORTS,
        report=report,
        rows_shown=ROWS_SHOWN,
        back_url=api_link("/console/reports", view="alerts", **params),
        exports=[
            ExportLink("导出 XLSX", api_link(path, **params, format="xlsx"), "report-xlsx"),
            ExportLink("导出 CSV", api_link(path, **params, format="csv"), "report-csv"),
        ],
    )
