"""Play log and reports under /api/v1: everyone signed in reads, a village admin only her villages.

Naming a village (town, endpoint) outside her scope is a 403 that names it; without a place
filter she simply sees her villages. Each list and report is JSON by default, or a download
with ``format=csv`` / ``format=xlsx``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from broadcast.clock import utc_now
from broadcast.deps import CurrentUser, ScopeDep, SessionDep, SettingsDep
from broadcast.dispatch.models import PlayEventType
from broadcast.playlog import exports, queries, reports
from broadcast.playlog.queries import EventFilters, Place, SlotFilters, TimeRange
from broadcast.playlog.schemas import (
    AlertDeliveryReport,
    AlertsReport,
    CoverageReport,
    DailyReport,
    HealthReport,
    KeysetPage,
    PlayEventOut,
    SlotRowOut,
)

router = APIRouter()
playlog = APIRouter(tags=["playlog"])
report_routes = APIRouter(prefix="/reports", tags=["reports"])
FILE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/csv": {}, exports.MEDIA_TYPES["xlsx"]: {}}}
}


def _window(
    settings: SettingsDep,
    _: CurrentUser,
    start: Annotated[
        str | None, Query(alias="from", max_length=40, description="开始：本地日期 YYYY-MM-DD 或带时区的时间")
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", max_length=40, description="结束：本地日期（含当天）或带时区的时间")
    ] = None,
) -> TimeRange:
    return queries.parse_range(start, end, tz=settings.tz, now=utc_now())


def _place(
    session: SessionDep,
    _: CurrentUser,
    scope: ScopeDep,
    town: Annotated[str | None, Query(max_length=12, description="乡镇代码")] = None,
    village: Annotated[str | None, Query(max_length=12, description="村（社区）代码")] = None,
    endpoint: Annotated[str | None, Query(max_length=32, description="终端编号")] = None,
) -> Place:
    return queries.resolve_place(session, scope=scope, town=town, village=village, endpoint=endpoint)


def _format(
    fmt: Annotated[str, Query(alias="format", max_length=8, description="json、csv 或 xlsx")] = "json",
) -> str:
    return exports.check_format(fmt)


WindowDep = Annotated[TimeRange, Depends(_window)]
PlaceDep = Annotated[Place, Depends(_place)]
FormatDep = Annotated[str, Depends(_format)]
LimitQuery = Annotated[int, Query(ge=1, le=queries.MAX_PAGE, description="每页条数")]
CursorQuery = Annotated[str | None, Query(max_length=200, description="上一页返回的 next_cursor")]
CampaignQuery = Annotated[int | None, Query(description="宣传计划编号")]


@playlog.get("/playlog", response_model=KeysetPage[PlayEventOut], responses=FILE_RESPONSES)
def play_log(
    session: SessionDep,
    settings: SettingsDep,
    window: WindowDep,
    place: PlaceDep,
    fmt: FormatDep,
    campaign: CampaignQuery = None,
    alert: Annotated[int | None, Query(description="紧急插播编号")] = None,
    type: Annotated[
        str | None, Query(max_length=16, description="事件：started、completed、interrupted、failed")
    ] = None,
    drill: Annotated[bool | None, Query(description="true 只看演练，false 不含演练")] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> KeysetPage[PlayEventOut] | Response:
    """What the speakers reported playing, oldest first."""
    queries.check_campaign(session, campaign)
    queries.check_alert(session, alert)
    queries.check_choice("事件类型", type, [t.value for t in PlayEventType])
    filters = EventFilters(window=window, place=place, campaign=campaign, alert=alert, type=type, drill=drill)
    if fmt == "json":
        return queries.play_events(session, filters, limit=limit, cursor=cursor)
    sheet = exports.play_events_sheet(queries.all_play_events(session, filters))
    return exports.respond_range(
        fmt, [sheet], name="播放记录", ascii_name="playlog", window=window, tz=settings.tz
    )


@playlog.get("/playlog/slots", response_model=KeysetPage[SlotRowOut], responses=FILE_RESPONSES)
def plan_versus_actual(
    session: SessionDep,
    settings: SettingsDep,
    window: WindowDep,
    place: PlaceDep,
    fmt: FormatDep,
    campaign: CampaignQuery = None,
    status: Annotated[
        str | None, Query(max_length=16, description="played、partial、failed、missed 或 pending")
    ] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> KeysetPage[SlotRowOut] | Response:
    """Planned slots and what became of each (missed ones say offline or silent, and since when)."""
    queries.check_campaign(session, campaign)
    queries.check_choice("播出结果", status, queries.SLOT_STATUSES)
    filters = SlotFilters(window=window, place=place, campaign=campaign, status=status)
    if fmt == "json":
        return queries.slots(session, filters, limit=limit, cursor=cursor)
    sheet = exports.slots_sheet(queries.all_slots(session, filters))
    return exports.respond_range(
        fmt, [sheet], name="计划与实播", ascii_name="slots", window=window, tz=settings.tz
    )


@report_routes.get("/coverage", response_model=CoverageReport, responses=FILE_RESPONSES)
def coverage_report(
    session: SessionDep,
    settings: SettingsDep,
    window: WindowDep,
    place: PlaceDep,
    fmt: FormatDep,
    campaign: CampaignQuery = None,
) -> CoverageReport | Response:
    """Per campaign and village: planned, played, partial, failed, missed, pending, played %."""
    queries.check_campaign(session, campaign)
    report = reports.coverage(session, window=window, place=place, campaign=campaign)
    if fmt == "json":
        return report
    sheets = exports.coverage_sheets(report)
    return exports.respond_range(
        fmt, sheets, name="播出覆盖", ascii_name="coverage", window=window, tz=settings.tz
    )


@report_routes.get("/daily", response_model=DailyReport, responses=FILE_RESPONSES)
def daily_report(
    session: SessionDep, settings: SettingsDep, window: WindowDep, place: PlaceDep, fmt: FormatDep
) -> DailyReport | Response:
    """Per village and local day: slots by outcome, live alerts and drills played, online %."""
    report = reports.daily(session, window=window, place=place, now=utc_now())
    if fmt == "json":
        return report
    sheet = exports.daily_sheet(report)
    return exports.respond_range(
        fmt, [sheet], name="每日汇总", ascii_name="daily", window=window, tz=settings.tz
    )


@report_routes.get("/alerts", response_model=AlertsReport, responses=FILE_RESPONSES)
def alerts_report(
    session: SessionDep,
    settings: SettingsDep,
    window: WindowDep,
    place: PlaceDep,
    fmt: FormatDep,
    drill: Annotated[bool | None, Query(description="true 只看演练，false 只看实战")] = None,
) -> AlertsReport | Response:
    """Alerts sent in the range: how many speakers each reached, played it, never got it."""
    report = reports.alerts(session, window=window, place=place, drill=drill)
    if fmt == "json":
        return report
    sheet = exports.alerts_sheet(report)
    return exports.respond_range(
        fmt, [sheet], name="紧急插播送达", ascii_name="alerts", window=window, tz=settings.tz
    )


@report_routes.get("/alerts/{alert_id}", response_model=AlertDeliveryReport, responses=FILE_RESPONSES)
def alert_delivery_report(
    alert_id: int, session: SessionDep, settings: SettingsDep, place: PlaceDep, fmt: FormatDep
) -> AlertDeliveryReport | Response:
    """One alert, per endpoint: sent, delivered, started, latencies, and the list it never reached."""
    report = reports.alert_delivery(session, alert_id=alert_id, place=place)
    if fmt == "json":
        return report
    sheets = exports.alert_delivery_sheets(report)
    return exports.respond(
        fmt,
        sheets,
        name=f"紧急插播{alert_id}_送达报告",
        ascii_name=f"alert_{alert_id}_delivery",
        tz=settings.tz,
    )


@report_routes.get("/health", response_model=HealthReport, responses=FILE_RESPONSES)
def health_report(
    session: SessionDep,
    settings: SettingsDep,
    window: WindowDep,
    place: PlaceDep,
    fmt: FormatDep,
    chronic: Annotated[bool, Query(description="true 只列长期离线的终端")] = False,
) -> HealthReport | Response:
    """Per endpoint: online % over the range, last seen, offline since; the chronically offline first."""
    report = reports.health(
        session,
        window=window,
        place=place,
        now=utc_now(),
        threshold_pct=settings.play_log_chronic_online_pct,
        offline_days=settings.play_log_chronic_offline_days,
        chronic_only=chronic,
    )
    if fmt == "json":
        return report
    sheet = exports.health_sheet(report)
    return exports.respond_range(
        fmt, [sheet], name="终端在线", ascii_name="health", window=window, tz=settings.tz
    )


router.include_router(playlog)
router.include_router(report_routes)
