"""CSV and XLSX exports of the play log and the reports, with Chinese headers.

CSV starts with a UTF-8 BOM (Excel on a Chinese Windows reads BOM-less UTF-8 as GBK). Times are
shown in the city's local time. A text cell starting with ``= + - @`` is written as text, never
as a formula: endpoint names come from CSV imports and must not run in an inspector's Excel.
File names go in ``filename*`` (RFC 5987/6266) so the Chinese name survives, with an ASCII
fallback in ``filename``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Response
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from broadcast.alerts.models import CATEGORY_LABELS, LEVEL_NAMES, STATUS_LABELS, AlertCategory, AlertStatus
from broadcast.errors import Invalid
from broadcast.playlog.queries import TimeRange
from broadcast.playlog.schemas import (
    AlertDeliveryReport,
    AlertsReport,
    CoverageReport,
    DailyReport,
    HealthReport,
    PlayEventOut,
    SlotRowOut,
)

FORMATS = ("json", "csv", "xlsx")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
ENDPOINT_STATUS_LABELS = {"online": "在线", "offline": "离线", "fault": "故障", "disabled": "停用"}
_FORMULA_START = ("=", "+", "-", "@")


def check_format(value: str) -> str:
    if value not in FORMATS:
        raise Invalid(
            f"未知的导出格式：{value}；可用值：{'、'.join(FORMATS)}",
            details={"value": value, "allowed": FORMATS},
        )
    return value


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Any], Any]


@dataclass(frozen=True)
class Sheet:
    title: str
    columns: Sequence[Column]
    rows: Iterable[Any]  # read once, when the file is written


def _cell(value: Any, tz: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "是" if value else "否"
    return "" if value is None else value


def _csv(sheet: Sheet, tz: ZoneInfo) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.header for c in sheet.columns])
    for row in sheet.rows:
        cells = [_cell(c.value(row), tz) for c in sheet.columns]
        writer.writerow(
            [f"'{v}" if isinstance(v, str) and v.startswith(_FORMULA_START) else v for v in cells]
        )
    return out.getvalue().encode("utf-8-sig")


def _xlsx(sheets: Sequence[Sheet], tz: ZoneInfo) -> bytes:
    book = Workbook(write_only=True)
    for sheet in sheets:
        page: WriteOnlyWorksheet = book.create_sheet(title=sheet.title[:31])
        page.append([c.header for c in sheet.columns])
        for row in sheet.rows:
            cells = []
            for column in sheet.columns:
                cell = WriteOnlyCell(page, value=_cell(column.value(row), tz))
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # text, even when it looks like a formula
                cells.append(cell)
            page.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _disposition(name: str, ascii_name: str) -> str:
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def respond(fmt: str, sheets: Sequence[Sheet], *, name: str, ascii_name: str, tz: ZoneInfo) -> Response:
    """The first sheet as CSV, or every sheet in one workbook; ``name`` without the extension."""
    body = _csv(sheets[0], tz) if fmt == "csv" else _xlsx(sheets, tz)
    return Response(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": _disposition(f"{name}.{fmt}", f"{ascii_name}.{fmt}")},
    )


def respond_range(
    fmt: str, sheets: Sequence[Sheet], *, name: str, ascii_name: str, window: TimeRange, tz: ZoneInfo
) -> Response:
    """``respond`` with the range's local dates after both names: ``播放记录_2026-11-03``."""
    first, last = window.first_day.isoformat(), window.last_day.isoformat()
    label = first if first == last else f"{first}_{last}"
    return respond(fmt, sheets, name=f"{name}_{label}", ascii_name=f"{ascii_name}_{label}", tz=tz)


def _get(name: str) -> Callable[[Any], Any]:
    return lambda row: getattr(row, name)


def _col(header: str, name: str) -> Column:
    return Column(header, _get(name))


_PLACE = [_col("乡镇（街道）", "town_name"), _col("村（社区）", "village_name")]
_ENDPOINT = [_col("终端编号", "endpoint_code"), _col("终端名称", "endpoint_name")]
_COUNTS = [
    _col("计划", "planned"),
    _col("已播出", "played"),
    _col("部分播出", "partial"),
    _col("播放失败", "failed"),
    _col("未播出", "missed"),
    _col("待核对", "pending"),
    _col("播出率（%）", "played_pct"),
]


def play_events_sheet(rows: Iterable[PlayEventOut]) -> Sheet:
    columns = [
        _col("播放时间", "occurred_at"),
        _col("事件", "type_label"),
        *_PLACE,
        *_ENDPOINT,
        _col("宣传计划", "campaign_name"),
        _col("紧急插播", "alert_title"),
        _col("演练", "drill"),
        Column("播放位置（秒）", lambda r: None if r.position_ms is None else round(r.position_ms / 1000, 1)),
        _col("原因", "reason"),
        _col("上报时间", "received_at"),
    ]
    return Sheet("播放记录", columns, rows)


def slots_sheet(rows: Iterable[SlotRowOut]) -> Sheet:
    columns = [
        _col("计划开始", "starts_at"),
        _col("计划结束", "ends_at"),
        *_PLACE,
        *_ENDPOINT,
        _col("宣传计划", "campaign_name"),
        _col("播出结果", "status_label"),
        _col("原因", "cause_label"),
        _col("离线起始", "offline_since"),
        _col("开始播放", "started_at"),
        _col("播放完成", "completed_at"),
    ]
    return Sheet("计划与实播", columns, rows)


def coverage_sheets(report: CoverageReport) -> list[Sheet]:
    detail = [_col("宣传计划", "campaign_name"), *_PLACE, *_COUNTS]
    summary = [_col("宣传计划", "campaign_name"), *_COUNTS]
    return [Sheet("按计划和村", detail, report.rows), Sheet("按计划汇总", summary, report.campaigns)]


def daily_sheet(report: DailyReport) -> Sheet:
    columns = [
        _col("日期", "day"),
        *_PLACE,
        _col("终端数", "endpoints"),
        *_COUNTS,
        _col("紧急插播（实战）", "alerts_played"),
        _col("演练", "drills_played"),
        _col("在线率（%）", "online_pct"),
    ]
    return Sheet("每日汇总", columns, report.rows)


def alert_delivery_sheets(report: AlertDeliveryReport) -> list[Sheet]:
    columns = [
        *_PLACE,
        *_ENDPOINT,
        _col("送达状态", "state_label"),
        _col("发送时在线", "online_at_send"),
        Column("当前状态", lambda r: ENDPOINT_STATUS_LABELS.get(r.endpoint_status, r.endpoint_status)),
        _col("发送时间", "sent_at"),
        _col("送达时间", "delivered_at"),
        _col("开始播放", "started_at"),
        _col("播放结束", "finished_at"),
        _col("送达用时（秒）", "delivered_after_s"),
        _col("开播用时（秒）", "started_after_s"),
    ]
    return [Sheet("送达明细", columns, report.rows), Sheet("未送达", columns, report.unreached)]


def alerts_sheet(report: AlertsReport) -> Sheet:
    columns = [
        _col("编号", "alert_id"),
        _col("标题", "title"),
        Column("级别", lambda r: LEVEL_NAMES.get(r.level, str(r.level))),
        Column("类别", lambda r: CATEGORY_LABELS[AlertCategory(r.category)]),
        _col("演练", "drill"),
        Column("状态", lambda r: STATUS_LABELS[AlertStatus(r.status)]),
        _col("发送时间", "sent_at"),
        _col("终端数", "endpoints"),
        _col("已送达", "delivered"),
        _col("已播完", "completed"),
        _col("未送达", "never_reached"),
    ]
    return Sheet("紧急插播送达", columns, report.rows)


def health_sheet(report: HealthReport) -> Sheet:
    columns = [
        *_ENDPOINT,
        *_PLACE,
        Column("当前状态", lambda r: ENDPOINT_STATUS_LABELS.get(r.status, r.status)),
        _col("在线率（%）", "online_pct"),
        _col("最后在线", "last_seen_at"),
        _col("离线起始", "offline_since"),
        _col("长期离线", "chronic"),
    ]
    return Sheet("终端在线情况", columns, report.rows)
