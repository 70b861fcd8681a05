"""Materialization: compile the next hours once and store each endpoint's rundown (播出单) slots.

**Window.** Whole local days, from the start of today to the end of the day that holds
``now + horizon`` (the compiler needs whole days so the daily maximum and moves agree between
successive windows). Once a day ends past the horizon, the window rolls forward by itself.

**Compile once.** Approved/active campaigns whose season overlaps the window are loaded; each
campaign's selector is resolved to endpoint ids ONCE; endpoints are grouped into classes (same
campaigns, same quiet hours); the compiler runs once for all classes; each class's slots and
drops are then copied to its member endpoints. A campaign that cannot be compiled (no finished
render of its pinned revision, a selector that no longer resolves, stored values the compiler
refuses) is skipped and named in the report; it does not stop the others.

**Store idempotently.** The stored rows of the window are read once and diffed in memory
against the compiled ones by their natural key (endpoint, campaign, occurrence): new keys are
inserted, changed ones updated, vanished ones deleted, equal ones left alone, all with bulk
executemany statements. **The past is history:** a stored row that has started
(``starts_at <= now``) is never updated or deleted, and a compiled row that would start at or
before ``now`` is not inserted (it can no longer play). Rows beyond the window that have not
started (the horizon shrank) are deleted. Running twice on the same input changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from pydantic import ValidationError
from sqlalchemy import bindparam, delete, insert, select, update
from sqlmodel import Session

from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.errors import BroadcastError
from broadcast.scheduling.classes import ClassPlan, plan_classes
from broadcast.scheduling.compiler import CampaignSpec, ClassRundown, Rundowns, compile_rundowns
from broadcast.scheduling.models import Campaign, RundownSlot, SlotStatus
from broadcast.scheduling.quiet import endpoint_quiet_hours
from broadcast.scheduling.recurrence import SchedulingError
from broadcast.scheduling.refresh import mark_materialized
from broadcast.scheduling.service import PLAYING, campaign_spec, list_by_status, program_duration_ms
from broadcast.targets.schemas import Selector
from broadcast.targets.service import resolve_endpoint_ids

log = logging.getLogger(__name__)

CHUNK = 2000
DETAIL_MAX = 500
_TABLE = RundownSlot.__table__  # type: ignore[attr-defined]
_VALUE_COLUMNS = ("revision_id", "starts_at", "ends_at", "status", "moved", "bumped_by", "reason", "detail")

Key = tuple[int, int, datetime]  # endpoint, campaign, occurrence
Values = tuple[int, datetime, datetime, SlotStatus, bool, int | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A playing campaign left out of the rundowns, and why (Chinese)."""

    campaign_id: int
    name: str
    reason: str


@dataclass(frozen=True)
class CompiledWindow:
    """One compilation: the campaigns, their specs, the endpoint classes and the rundowns."""

    window_start: datetime
    window_end: datetime
    tz: tzinfo
    campaigns: dict[int, Campaign]
    specs: dict[int, CampaignSpec]
    plan: ClassPlan
    rundowns: Rundowns
    skipped: tuple[Skipped, ...]


@dataclass
class MaterializeReport:
    window_start: datetime
    window_end: datetime
    campaigns: int = 0
    classes: int = 0
    endpoints: int = 0
    planned: int = 0
    dropped: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    kept_past: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted


def window_for(now: datetime, *, horizon_h: int, tz: tzinfo) -> tuple[datetime, datetime]:
    """Whole local days from today's 00:00 to the end of the day holding ``now + horizon_h``."""
    first = now.astimezone(tz).date()
    last = (now + timedelta(hours=horizon_h)).astimezone(tz).date()
    return _day_start(first, tz), _day_start(last + timedelta(days=1), tz)


def _day_start(day: date, tz: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def materialize(
    session: Session, *, settings: Settings, now: datetime | None = None, horizon_h: int | None = None
) -> MaterializeReport:
    """Compile the window and store every endpoint's slots and drops (see the module doc). Flushes only."""
    now = now or utc_now()
    hours = settings.rundown_horizon_h if horizon_h is None else horizon_h
    start, end = window_for(now, horizon_h=hours, tz=settings.tz)
    compiled = compile_window(session, settings=settings, window_start=start, window_end=end)
    report = MaterializeReport(start, end, skipped=list(compiled.skipped))
    report.campaigns = len(compiled.specs)
    report.classes = len(compiled.plan.members)
    report.endpoints = sum(len(members) for members in compiled.plan.members.values())
    desired = desired_rows(compiled)
    report.planned = sum(1 for values in desired.values() if values[3] is SlotStatus.planned)
    report.dropped = len(desired) - report.planned
    _store(session, desired, report, now=now)
    mark_materialized(session, at=now, through=end)
    session.flush()
    log.info(
        "materialized %s..%s: %d campaigns, %d classes, %d endpoints; +%d ~%d -%d =%d",
        start,
        end,
        report.campaigns,
        report.classes,
        report.endpoints,
        report.inserted,
        report.updated,
        report.deleted,
        report.unchanged,
    )
    return report


def compile_window(
    session: Session,
    *,
    settings: Settings,
    window_start: datetime,
    window_end: datetime,
    endpoint_ids: Collection[int] | None = None,
) -> CompiledWindow:
    """Compile the playing campaigns for a window of whole local days, optionally for some endpoints only."""
    tz = settings.tz
    first, last = (
        window_start.astimezone(tz).date(),
        (window_end - timedelta(microseconds=1)).astimezone(tz).date(),
    )
    campaigns = {
        c.id or 0: c
        for c in list_by_status(session, PLAYING)
        if c.season_start <= last and c.season_end >= first
    }
    skipped: list[Skipped] = []
    durations = _durations(session, campaigns, skipped)
    reached = _targets(session, {cid: campaigns[cid] for cid in durations}, skipped, endpoint_ids)
    endpoint_campaigns = _by_endpoint(reached)
    quiet = endpoint_quiet_hours(session, settings=settings, endpoint_ids=endpoint_campaigns)
    plan = plan_classes(endpoint_campaigns, quiet)
    specs: dict[int, CampaignSpec] = {}
    for cid, classes in plan.targets.items():
        try:
            specs[cid] = campaign_spec(campaigns[cid], duration_ms=durations[cid], classes=classes, tz=tz)
        except SchedulingError as exc:
            skipped.append(Skipped(cid, campaigns[cid].name, exc.message))
    kept = {cid: classes for cid, classes in plan.targets.items() if cid in specs}
    plan = ClassPlan(members=plan.members, quiet=plan.quiet, targets=kept)
    rundowns = compile_rundowns(
        specs.values(), plan.quiet, window_start=window_start, window_end=window_end, tz=tz
    )
    skipped.sort(key=lambda item: item.campaign_id)
    return CompiledWindow(window_start, window_end, tz, campaigns, specs, plan, rundowns, tuple(skipped))


def _durations(session: Session, campaigns: dict[int, Campaign], skipped: list[Skipped]) -> dict[int, int]:
    """Each campaign's program length: the longest finished render of its pinned revision."""
    durations: dict[int, int] = {}
    for cid, campaign in campaigns.items():
        duration = program_duration_ms(session, campaign.revision_id)
        if duration is None or duration <= 0:
            reason = "节目单版本还没有生成完成的音频，无法安排播出：请先生成（渲染）该版本。"
            skipped.append(Skipped(cid, campaign.name, reason))
        else:
            durations[cid] = duration
    return durations


def _targets(
    session: Session,
    campaigns: dict[int, Campaign],
    skipped: list[Skipped],
    endpoint_ids: Collection[int] | None,
) -> dict[int, list[int]]:
    """Each campaign's selector resolved once to endpoint ids (restricted to ``endpoint_ids`` if given)."""
    only = None if endpoint_ids is None else frozenset(endpoint_ids)
    reached: dict[int, list[int]] = {}
    for cid, campaign in campaigns.items():
        try:
            ids = resolve_endpoint_ids(session, selector=Selector.model_validate(campaign.selector))
        except (BroadcastError, ValidationError) as exc:
            skipped.append(Skipped(cid, campaign.name, f"播发范围无法解析：{getattr(exc, 'message', exc)}"))
            continue
        reached[cid] = ids if only is None else [i for i in ids if i in only]
    return reached


def _by_endpoint(reached: dict[int, list[int]]) -> dict[int, frozenset[int]]:
    campaigns: dict[int, set[int]] = defaultdict(set)
    for cid, ids in reached.items():
        for endpoint_id in ids:
            campaigns[endpoint_id].add(cid)
    return {endpoint_id: frozenset(cids) for endpoint_id, cids in campaigns.items()}


def class_rows(
    rundown: ClassRundown, specs: dict[int, CampaignSpec], campaigns: dict[int, Campaign]
) -> Iterator[tuple[int, datetime, Values]]:
    """A class's slots and drops as (campaign, occurrence, stored values)."""
    for slot in rundown.slots:
        revision = campaigns[slot.campaign_id].revision_id
        values: Values = (
            revision,
            slot.start,
            slot.end,
            SlotStatus.planned,
            slot.moved,
            slot.bumped_by,
            None,
            None,
        )
        yield slot.campaign_id, slot.occurrence, values
    for drop in rundown.drops:
        length = timedelta(milliseconds=specs[drop.campaign_id].duration_ms)
        revision = campaigns[drop.campaign_id].revision_id
        detail = drop.detail[:DETAIL_MAX]
        end = drop.occurrence + length
        values = (
            revision,
            drop.occurrence,
            end,
            SlotStatus.dropped,
            False,
            drop.by_campaign,
            drop.reason.value,
            detail,
        )
        yield drop.campaign_id, drop.occurrence, values


def desired_rows(compiled: CompiledWindow) -> dict[Key, Values]:
    """Every endpoint's rows, copied from its class's rundown."""
    rows: dict[Key, Values] = {}
    for rundown in compiled.rundowns.classes:
        members = compiled.plan.members.get(rundown.class_id, ())
        for cid, occurrence, values in class_rows(rundown, compiled.specs, compiled.campaigns):
            for endpoint_id in members:
                rows[endpoint_id, cid, occurrence] = values
    return rows


def _store(session: Session, desired: dict[Key, Values], report: MaterializeReport, *, now: datetime) -> None:
    columns = [_TABLE.c[name] for name in _VALUE_COLUMNS]
    query = select(
        _TABLE.c.id, _TABLE.c.endpoint_id, _TABLE.c.campaign_id, _TABLE.c.occurrence_at, *columns
    ).where(_TABLE.c.occurrence_at >= report.window_start, _TABLE.c.occurrence_at < report.window_end)
    updates: list[dict[str, Any]] = []
    deletes: list[int] = []
    for row in session.execute(query):
        key: Key = (row[1], row[2], row[3])
        stored: Values = tuple(row[4:])
        wanted = desired.pop(key, None)
        if stored[1] <= now:
            report.kept_past += 1
        elif wanted is None or wanted[1] <= now:
            deletes.append(row[0])
        elif wanted == stored:
            report.unchanged += 1
        else:
            updates.append({"b_id": row[0], **{f"b_{k}": v for k, v in _values(wanted, now).items()}})
    inserts = [
        {"endpoint_id": key[0], "campaign_id": key[1], "occurrence_at": key[2], **_values(values, now)}
        for key, values in desired.items()
        if values[1] > now
    ]
    report.inserted, report.updated = len(inserts), len(updates)
    report.deleted = _delete(session, deletes) + _delete_beyond(session, report.window_end, now)
    _executemany(session, insert(_TABLE), inserts)
    assignments: dict[str, Any] = {name: bindparam(f"b_{name}") for name in (*_VALUE_COLUMNS, "updated_at")}
    statement = update(_TABLE).where(_TABLE.c.id == bindparam("b_id")).values(**assignments)
    _executemany(session, statement, updates)


def _values(values: Values, now: datetime) -> dict[str, Any]:
    return {**dict(zip(_VALUE_COLUMNS, values, strict=True)), "updated_at": now}


def _executemany(session: Session, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
    for index in range(0, len(rows), CHUNK):
        session.execute(statement, list(rows[index : index + CHUNK]))


def _delete(session: Session, ids: list[int]) -> int:
    for index in range(0, len(ids), CHUNK):
        session.execute(delete(_TABLE).where(_TABLE.c.id.in_(ids[index : index + CHUNK])))
    return len(ids)


def _delete_beyond(session: Session, window_end: datetime, now: datetime) -> int:
    statement = delete(_TABLE).where(_TABLE.c.occurrence_at >= window_end, _TABLE.c.starts_at > now)
    return int(getattr(session.execute(statement), "rowcount", 0) or 0)
