""" "What will play on endpoint E, or in village V, on day D, and why" (为什么播 / 为什么不播).

A day inside the materialized window is read from the stored rundown (``rundown_slots``): what was
planned then is what is shown, the past included. A day beyond it is compiled on the fly with the
same compiler for just the endpoints asked about, nothing written, and the answer says so
(``source = "forecast"``, 预测). Each line names the campaign, its playlist and pinned revision,
its priority and rule (:func:`broadcast.scheduling.presets.describe`), whether it was moved and by
which campaign, or why it does not play. The village view shows a line shared by all its
endpoints once with their count, and lists the endpoints of lines that differ.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Literal, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import Session, SQLModel, col
from sqlmodel import select as sql_select

from broadcast.config import Settings
from broadcast.playlists.models import Playlist, PlaylistRevision
from broadcast.regions.models import Endpoint, Village
from broadcast.scheduling.compiler import DropReason, local_days
from broadcast.scheduling.materialize import Values, class_rows, compile_window
from broadcast.scheduling.models import Campaign, RundownSlot, SlotStatus
from broadcast.scheduling.presets import describe
from broadcast.scheduling.recurrence import SchedulingError
from broadcast.scheduling.refresh import materialized_through, pending_refresh
from broadcast.scheduling.service import recurrence_of

M = TypeVar("M", bound=SQLModel)
REASONS = {
    DropReason.EXCEPTION_DAY.value: "例外日",
    DropReason.OUTSIDE_WINDOWS.value: "不在播出时段内",
    DropReason.QUIET_HOURS.value: "静默时段",
    DropReason.MAX_PLAYS.value: "已达每日播放上限",
    DropReason.BUMPED.value: "被其他计划挤占",
}
SOURCES = {
    "materialized": "已生成的播出单",
    "forecast": "预测：该日超出已生成的播出单范围，按当前计划即时计算，未保存，计划变化后可能不同",
}


class CampaignRef(BaseModel):
    id: int
    name: str


class WhyLine(BaseModel):
    """One play, or one occurrence that does not play, and why."""

    plays: bool
    start: str = Field(description="本地时间 HH:MM")
    end: str = Field(description="本地时间 HH:MM")
    starts_at: datetime
    ends_at: datetime
    occurrence_at: datetime = Field(description="规则给出的原定时间")
    campaign: CampaignRef
    playlist: str
    playlist_id: int
    revision: int = Field(description="节目单版本号")
    priority: int
    rule: str = Field(description="重复规则")
    moved: bool
    bumped_by: CampaignRef | None = Field(description="挤占它（或令其顺延）的计划")
    reason: str | None = Field(description="不播的原因代码")
    reason_text: str | None
    detail: str | None
    text: str = Field(description="一句话说明")
    endpoints: int = Field(description="这一条涉及的终端数")
    endpoint_codes: list[str] | None = Field(description="只涉及部分终端时列出终端代码；全部终端时为空")


class WhyDay(BaseModel):
    kind: Literal["endpoint", "village"]
    code: str
    name: str
    date: date
    timezone: str
    endpoints: int
    source: Literal["materialized", "forecast"]
    source_text: str
    refresh_pending: bool = Field(description="有计划变更尚未写入播出单")
    lines: list[WhyLine]


@dataclass(frozen=True, slots=True)
class _Row:
    endpoint_id: int
    campaign_id: int
    occurrence: datetime
    values: Values


def endpoint_day(session: Session, *, settings: Settings, endpoint: Endpoint, day: date) -> WhyDay:
    rows, source = _day_rows(session, settings, [endpoint.id or 0], day)
    lines = _lines(session, rows, {endpoint.id or 0: endpoint.code}, settings.tz)
    return _day(session, "endpoint", endpoint.code, endpoint.name, day, settings, 1, source, lines)


def village_day(session: Session, *, settings: Settings, village: Village, day: date) -> WhyDay:
    query = select(col(Endpoint.id), col(Endpoint.code)).where(col(Endpoint.village_id) == village.id)
    codes: dict[int, str] = {row[0]: row[1] for row in session.execute(query.order_by(col(Endpoint.code)))}
    rows, source = _day_rows(session, settings, list(codes), day)
    lines = _lines(session, rows, codes, settings.tz)
    return _day(session, "village", village.code, village.name, day, settings, len(codes), source, lines)


def _day(
    session: Session,
    kind: Literal["endpoint", "village"],
    code: str,
    name: str,
    day: date,
    settings: Settings,
    endpoints: int,
    source: Literal["materialized", "forecast"],
    lines: list[WhyLine],
) -> WhyDay:
    return WhyDay(
        kind=kind,
        code=code,
        name=name,
        date=day,
        timezone=settings.timezone,
        endpoints=endpoints,
        source=source,
        source_text=SOURCES[source],
        refresh_pending=pending_refresh(session) is not None,
        lines=lines,
    )


def _day_rows(
    session: Session, settings: Settings, endpoint_ids: Sequence[int], day: date
) -> tuple[list[_Row], Literal["materialized", "forecast"]]:
    start, end = local_days(day, 1, settings.tz)
    through = materialized_through(session)
    if through is not None and end <= through:
        return _stored(session, endpoint_ids, start, end), "materialized"
    if not endpoint_ids:
        return [], "forecast"
    compiled = compile_window(
        session, settings=settings, window_start=start, window_end=end, endpoint_ids=endpoint_ids
    )
    rows: list[_Row] = []
    for rundown in compiled.rundowns.classes:
        members = compiled.plan.members.get(rundown.class_id, ())
        for campaign_id, occurrence, values in class_rows(rundown, compiled.specs, compiled.campaigns):
            rows.extend(_Row(endpoint_id, campaign_id, occurrence, values) for endpoint_id in members)
    return rows, "forecast"


def _stored(session: Session, endpoint_ids: Sequence[int], start: datetime, end: datetime) -> list[_Row]:
    table = RundownSlot.__table__  # type: ignore[attr-defined]
    columns = ("revision_id", "starts_at", "ends_at", "status", "moved", "bumped_by", "reason", "detail")
    query = select(
        table.c.endpoint_id, table.c.campaign_id, table.c.occurrence_at, *(table.c[c] for c in columns)
    )
    query = query.where(
        table.c.endpoint_id.in_(list(endpoint_ids)), table.c.starts_at >= start, table.c.starts_at < end
    )
    return [_Row(row[0], row[1], row[2], tuple(row[3:])) for row in session.execute(query)]


@dataclass(frozen=True, slots=True)
class _Info:
    campaigns: dict[int, Campaign]
    revisions: dict[int, PlaylistRevision]
    playlists: dict[int, Playlist]
    rules: dict[int, str]


def _info(session: Session, rows: Sequence[_Row], tz: tzinfo) -> _Info:
    campaign_ids = {row.campaign_id for row in rows} | {r.values[5] for r in rows if r.values[5] is not None}
    campaigns = {c.id or 0: c for c in _by_ids(session, Campaign, campaign_ids)}
    revisions = {r.id or 0: r for r in _by_ids(session, PlaylistRevision, {row.values[0] for row in rows})}
    playlists = {
        p.id or 0: p for p in _by_ids(session, Playlist, {r.playlist_id for r in revisions.values()})
    }
    return _Info(campaigns, revisions, playlists, {cid: _rule(c, tz) for cid, c in campaigns.items()})


def _by_ids(session: Session, model: type[M], ids: Iterable[int | None]) -> list[M]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return []
    return list(session.exec(sql_select(model).where(col(model.id).in_(wanted))).all())  # type: ignore[attr-defined]


def _rule(campaign: Campaign, tz: tzinfo) -> str:
    try:
        return describe(recurrence_of(campaign, tz=tz))
    except SchedulingError as exc:
        return f"规则无法解析：{exc.message}"


def _lines(session: Session, rows: Sequence[_Row], codes: dict[int, str], tz: tzinfo) -> list[WhyLine]:
    """One line per distinct (campaign, occurrence, outcome), with the endpoints it concerns."""
    info = _info(session, rows, tz)
    groups: dict[tuple[int, datetime, Values], list[int]] = defaultdict(list)
    for row in rows:
        groups[row.campaign_id, row.occurrence, row.values].append(row.endpoint_id)
    lines = [
        _line(info, campaign_id, occurrence, values, sorted(codes[e] for e in members), len(codes), tz)
        for (campaign_id, occurrence, values), members in groups.items()
    ]
    return sorted(
        lines, key=lambda line: (line.starts_at, not line.plays, line.campaign.id, line.endpoint_codes or [])
    )


def _ref(info: _Info, campaign_id: int) -> CampaignRef:
    campaign = info.campaigns.get(campaign_id)
    return CampaignRef(id=campaign_id, name=campaign.name if campaign else f"计划 #{campaign_id}")


def _line(
    info: _Info,
    campaign_id: int,
    occurrence: datetime,
    values: Values,
    members: list[str],
    total: int,
    tz: tzinfo,
) -> WhyLine:
    revision_id, starts_at, ends_at, status, moved, bumped_by, reason, detail = values
    campaign = info.campaigns[campaign_id]
    revision = info.revisions[revision_id]
    playlist = info.playlists[revision.playlist_id]
    plays = status == SlotStatus.planned
    by = None if bumped_by is None else _ref(info, bumped_by)
    hm = f"{starts_at.astimezone(tz):%H:%M}", f"{ends_at.astimezone(tz):%H:%M}"
    return WhyLine(
        plays=plays,
        start=hm[0],
        end=hm[1],
        starts_at=starts_at,
        ends_at=ends_at,
        occurrence_at=occurrence,
        campaign=_ref(info, campaign_id),
        playlist=playlist.name,
        playlist_id=playlist.id or 0,
        revision=revision.number,
        priority=campaign.priority,
        rule=info.rules[campaign_id],
        moved=moved,
        bumped_by=by,
        reason=reason,
        reason_text=None if reason is None else REASONS.get(reason, reason),
        detail=detail,
        text=_text(info, campaign, playlist, revision, values, occurrence, tz),
        endpoints=len(members),
        endpoint_codes=None if len(members) == total else members,
    )


def _text(
    info: _Info,
    campaign: Campaign,
    playlist: Playlist,
    revision: PlaylistRevision,
    values: Values,
    occurrence: datetime,
    tz: tzinfo,
) -> str:
    _, starts_at, ends_at, status, moved, bumped_by, reason, detail = values
    by = "" if bumped_by is None else _ref(info, bumped_by).name
    if status == SlotStatus.planned:
        text = (
            f"{starts_at.astimezone(tz):%H:%M}-{ends_at.astimezone(tz):%H:%M} 播出“{campaign.name}”"
            f"（节目单“{playlist.name}”第 {revision.number} 版），"
            f"优先级 {campaign.priority}，规则：{info.rules[campaign.id or 0]}"
        )
        return text + (f"；原定 {occurrence.astimezone(tz):%H:%M} 被“{by}”占用，顺延播出" if moved else "")
    label = REASONS.get(reason or "", reason)
    text = f"{occurrence.astimezone(tz):%H:%M} “{campaign.name}”不播（{label}）：{detail}"
    return text + (f"（由“{by}”造成）" if by else "")
