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
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.types import TypeEngine
from sqlmodel import Session

from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.errors import BroadcastError
from broadcast.scheduling.classes import ClassPlan, plan_classes
from broadcast.scheduling.compiler import CampaignSpec, ClassRundown, Rundowns, compile_rundowns
from broadcast.scheduling.models import Campaign, SlotStatus
from broadcast.scheduling.quiet import endpoint_quiet_hours
from broadcast.scheduling.recurrence import SchedulingError
from broadcast.scheduling.refresh import mark_materialized
from broadcast.scheduling.service import PLAYING, campaign_spec, list_by_status, program_duration_ms
from broadcast.targets.schemas import Selector
from broadcast.targets.service import resolve_endpoint_ids

log = logging.getLogger(__name__)

CHUNK = 2000
DETAIL_MAX = 500
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
    changed_endpoints: set[int] = field(default_factory=set)

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
    _store(session, compiled, report, now=now)
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


@dataclass(frozen=True)
class _Codec:
    """The slots table with the driver's own column types, and how a value is stored in it.

    Diffing a million rows through the ORM column types (aware-UTC datetimes, enums) spends most
    of its time converting values; this copy of the table has no Python-side conversion (SQLite:
    the UTC text SQLAlchemy writes for a datetime; PostgreSQL: the driver's own timestamptz), and
    compiled values are encoded once per class, not per endpoint.
    """

    table: Table
    encode: Callable[[datetime], Any]

    @classmethod
    def for_dialect(cls, name: str) -> _Codec:
        if name == "sqlite":
            return cls(_raw_table(String()), _sqlite_text)
        return cls(_raw_table(DateTime(timezone=True)), _identity)

    def values(self, values: Values) -> Values:
        revision, starts, ends, status, moved, bumped_by, reason, detail = values
        return (
            revision,
            self.encode(starts),
            self.encode(ends),
            status.value,
            moved,
            bumped_by,
            reason,
            detail,
        )  # type: ignore[return-value]


def _sqlite_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _identity(at: datetime) -> datetime:
    return at


def _raw_table(moment: TypeEngine[Any]) -> Table:
    return Table(
        "rundown_slots",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("endpoint_id", Integer),
        Column("campaign_id", Integer),
        Column("occurrence_at", moment),
        Column("revision_id", Integer),
        Column("starts_at", moment),
        Column("ends_at", moment),
        Column("status", String),
        Column("moved", Boolean),
        Column("bumped_by", Integer),
        Column("reason", String),
        Column("detail", String),
        Column("updated_at", moment),
    )


def desired_rows(compiled: CompiledWindow, codec: _Codec) -> dict[Key, Values]:
    """Every endpoint's rows (encoded for storage), copied from its class's rundown."""
    rows: dict[Key, Values] = {}
    for rundown in compiled.rundowns.classes:
        members = compiled.plan.members.get(rundown.class_id, ())
        for cid, occurrence, values in class_rows(rundown, compiled.specs, compiled.campaigns):
            encoded, at = codec.values(values), codec.encode(occurrence)
            for endpoint_id in members:
                rows[endpoint_id, cid, at] = encoded
    return rows


def _store(session: Session, compiled: CompiledWindow, report: MaterializeReport, *, now: datetime) -> None:
    codec = _Codec.for_dialect(session.get_bind().dialect.name)
    desired = desired_rows(compiled, codec)
    report.planned = sum(1 for values in desired.values() if values[3] == SlotStatus.planned.value)
    report.dropped = len(desired) - report.planned
    table, now_raw = codec.table, codec.encode(now)
    window = (codec.encode(report.window_start), codec.encode(report.window_end))
    query = select(
        *(table.c[name] for name in ("id", "endpoint_id", "campaign_id", "occurrence_at", *_VALUE_COLUMNS))
    )
    query = query.where(table.c.occurrence_at >= window[0], table.c.occurrence_at < window[1])
    updates: list[dict[str, Any]] = []
    deletes: list[int] = []
    for row in session.execute(query).all():
        wanted = desired.pop((row[1], row[2], row[3]), None)
        if row[5] <= now_raw:
            report.kept_past += 1
        elif wanted is None or wanted[1] <= now_raw:
            deletes.append(row[0])
            report.changed_endpoints.add(row[1])
        elif wanted == tuple(row[4:]):
            report.unchanged += 1
        else:
            updates.append({"b_id": row[0], **{f"b_{k}": v for k, v in _values(wanted, now_raw).items()}})
            report.changed_endpoints.add(row[1])
    inserts = [(*key, *values, now_raw) for key, values in desired.items() if values[1] > now_raw]
    report.changed_endpoints.update(key[0] for key, values in desired.items() if values[1] > now_raw)
    report.inserted, report.updated = len(inserts), len(updates)
    report.deleted = _delete(session, table, deletes) + _delete_beyond(session, table, window[1], now_raw)
    _insert(session, inserts)
    assignments: dict[str, Any] = {name: bindparam(f"b_{name}") for name in (*_VALUE_COLUMNS, "updated_at")}
    _executemany(session, update(table).where(table.c.id == bindparam("b_id")).values(**assignments), updates)


def _values(values: Values, now: Any) -> dict[str, Any]:
    return {**dict(zip(_VALUE_COLUMNS, values, strict=True)), "updated_at": now}


_INSERT_COLUMNS = ", ".join(("endpoint_id", "campaign_id", "occurrence_at", *_VALUE_COLUMNS, "updated_at"))


def _insert(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Bulk insert positional tuples: COPY on PostgreSQL, DBAPI executemany on SQLite (no per-row dicts)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY rundown_slots ({_INSERT_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" * (_INSERT_COLUMNS.count(",") + 1))
    sql = f"INSERT INTO rundown_slots ({_INSERT_COLUMNS}) VALUES ({placeholders})"  # noqa: S608 - constants only
    for index in range(0, len(rows), CHUNK):
        connection.exec_driver_sql(sql, rows[index : index + CHUNK])


def _executemany(session: Session, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
    for index in range(0, len(rows), CHUNK):
        session.execute(statement, list(rows[index : index + CHUNK]))


def _delete(session: Session, table: Table, ids: list[int]) -> int:
    for index in range(0, len(ids), CHUNK):
        session.execute(delete(table).where(table.c.id.in_(ids[index : index + CHUNK])))
    return len(ids)


def _delete_beyond(session: Session, table: Table, window_end: Any, now: Any) -> int:
    statement = delete(table).where(table.c.occurrence_at >= window_end, table.c.starts_at > now)
    return int(getattr(session.execute(statement), "rowcount", 0) or 0)
