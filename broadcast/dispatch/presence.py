"""Presence: online while connected, offline on disconnect or after ``device_offline_after_s``.

Status moves only between ``online`` and ``offline``; ``fault`` and ``disabled`` are set by
people and stay, though the connection history of a faulty speaker is still recorded. Every
change writes a :class:`PresenceEvent` (state, address, reason) so reports can tell a speaker
that was offline from one that was connected and silent.

Several gateway processes share the database, so offline writes are conditional: a connection
marks its endpoint offline only if nobody has seen the endpoint since its own last frame (the
device may already be connected to another process), and the sweep of stale rows (for a process
that died) is one ``UPDATE ... RETURNING``, so each change is recorded exactly once.
``last_seen_at`` is written in batches, never one UPDATE per ping, and never moves backwards.
A connect storm is thousands of arrivals a second, so the gateway marks arrivals and
departures in batches too (``mark_online_many``, ``mark_offline_many``), one transaction per
batch, with the same rules as the one-row functions. Batches lock their rows in id order, so
two processes (or an arrival and a departure batch) cannot deadlock on each other.
These functions block: the gateway calls them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, case, func, or_, update
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from broadcast.dispatch.models import PresenceEvent, PresenceState
from broadcast.regions.models import Endpoint, EndpointStatus, Town, Village

_PRESENCE_STATUSES = (EndpointStatus.online, EndpointStatus.offline)


class Reason(StrEnum):
    connected = "connected"
    closed = "closed"  # the device closed, or the network dropped
    timeout = "timeout"  # no frame for device_offline_after_s
    stuck = "stuck"  # did not read its pushes
    bad_frames = "bad_frames"
    frame_too_large = "frame_too_large"
    shutdown = "shutdown"  # the gateway process stopped


REASON_LABELS = {
    Reason.connected: "建立连接",
    Reason.closed: "连接断开",
    Reason.timeout: "心跳超时",
    Reason.stuck: "不读取推送，被断开",
    Reason.bad_frames: "错误帧过多，被断开",
    Reason.frame_too_large: "帧过大，被断开",
    Reason.shutdown: "网关停止",
}


def mark_online(session: Session, *, endpoint_id: int, address: str | None, at: datetime) -> bool:
    """A device connected at ``at``; True when that changed its state or address (event written)."""
    endpoint = session.get_one(Endpoint, endpoint_id)
    was_online = endpoint.status == EndpointStatus.online
    moved = endpoint.address != address
    if endpoint.status in _PRESENCE_STATUSES:
        endpoint.status = EndpointStatus.online
    endpoint.address = address
    if endpoint.last_seen_at is None or endpoint.last_seen_at < at:
        endpoint.last_seen_at = at
    session.add(endpoint)
    if was_online and not moved:
        session.flush()
        return False
    session.add(
        PresenceEvent(
            endpoint_id=endpoint_id,
            state=PresenceState.online,
            at=at,
            address=address,
            reason=Reason.connected,
        )
    )
    session.flush()
    return True


def mark_offline(session: Session, *, endpoint_id: int, last_frame_at: datetime, reason: Reason) -> bool:
    """The connection whose last frame came at ``last_frame_at`` ended; True if that was a change."""
    seen = col(Endpoint.last_seen_at)
    statement = (
        update(Endpoint)
        .where(
            col(Endpoint.id) == endpoint_id,
            col(Endpoint.status).in_([EndpointStatus.online, EndpointStatus.fault]),
            or_(seen.is_(None), seen <= last_frame_at),
        )
        .values(
            status=case(
                (col(Endpoint.status) == EndpointStatus.online, EndpointStatus.offline),
                else_=col(Endpoint.status),
            ),
            last_seen_at=last_frame_at,
        )
        .returning(col(Endpoint.address))
    )
    row = session.execute(statement).first()
    if row is None:
        return False
    session.add(
        PresenceEvent(
            endpoint_id=endpoint_id,
            state=PresenceState.offline,
            at=last_frame_at,
            address=row[0],
            reason=reason,
        )
    )
    session.flush()
    return True


@dataclass(frozen=True)
class Arrival:
    endpoint_id: int
    address: str | None
    at: datetime


@dataclass(frozen=True)
class Departure:
    endpoint_id: int
    last_frame_at: datetime
    reason: Reason


@dataclass
class _Row:
    status: EndpointStatus
    address: str | None
    last_seen_at: datetime | None


def _lock_rows(session: Session, endpoint_ids: set[int]) -> dict[int, _Row]:
    """Status, address and last_seen_at of these endpoints, rows locked in id order (PostgreSQL)."""
    query = (
        sql_select(col(Endpoint.id), col(Endpoint.status), col(Endpoint.address), col(Endpoint.last_seen_at))
        .where(col(Endpoint.id).in_(sorted(endpoint_ids)))
        .order_by(col(Endpoint.id))
        .with_for_update()
    )
    rows = session.execute(query).all()
    return {eid: _Row(EndpointStatus(status), address, seen) for eid, status, address, seen in rows}


def mark_online_many(session: Session, arrivals: Sequence[Arrival]) -> set[int]:
    """``mark_online`` for a batch, in order; the endpoints whose state or address changed."""
    rows = _lock_rows(session, {a.endpoint_id for a in arrivals})
    table = Endpoint.__table__  # type: ignore[attr-defined]
    at = bindparam("at", type_=table.c.last_seen_at.type)
    statement = (
        table.update()
        .where(table.c.id == bindparam("eid"))
        .values(
            status=case(
                # Not IN (...): an expanding parameter cannot be used with executemany.
                (or_(*(table.c.status == s for s in _PRESENCE_STATUSES)), EndpointStatus.online),
                else_=table.c.status,
            ),
            address=bindparam("addr"),
            last_seen_at=case(
                (or_(table.c.last_seen_at.is_(None), table.c.last_seen_at < at), at),
                else_=table.c.last_seen_at,
            ),
        )
    )
    params, changed = [], set()
    for arrival in arrivals:
        row = rows.get(arrival.endpoint_id)
        if row is None:
            continue  # deleted since its token was read: nothing to mark
        if row.status != EndpointStatus.online or row.address != arrival.address:
            changed.add(arrival.endpoint_id)
            session.add(
                PresenceEvent(
                    endpoint_id=arrival.endpoint_id,
                    state=PresenceState.online,
                    at=arrival.at,
                    address=arrival.address,
                    reason=Reason.connected,
                )
            )
        if row.status in _PRESENCE_STATUSES:
            row.status = EndpointStatus.online
        row.address = arrival.address
        if row.last_seen_at is None or row.last_seen_at < arrival.at:
            row.last_seen_at = arrival.at
        params.append({"eid": arrival.endpoint_id, "addr": arrival.address, "at": arrival.at})
    if params:
        session.execute(statement, params)
    session.flush()
    return changed


def mark_offline_many(session: Session, departures: Sequence[Departure]) -> set[int]:
    """``mark_offline`` for a batch, in order; the endpoints it took offline.

    A departure counts only if nobody has seen the endpoint since its connection's last frame:
    a device that already reconnected (here or to another process) stays online.
    """
    rows = _lock_rows(session, {d.endpoint_id for d in departures})
    table = Endpoint.__table__  # type: ignore[attr-defined]
    statement = (
        table.update()
        .where(table.c.id == bindparam("eid"))
        .values(
            status=case(
                (table.c.status == EndpointStatus.online, EndpointStatus.offline), else_=table.c.status
            ),
            last_seen_at=bindparam("last_frame", type_=table.c.last_seen_at.type),
        )
    )
    params, changed = [], set()
    for departure in departures:
        row = rows.get(departure.endpoint_id)
        if row is None or row.status not in (EndpointStatus.online, EndpointStatus.fault):
            continue
        if row.last_seen_at is not None and row.last_seen_at > departure.last_frame_at:
            continue
        if row.status == EndpointStatus.online:
            row.status = EndpointStatus.offline
        row.last_seen_at = departure.last_frame_at
        changed.add(departure.endpoint_id)
        params.append({"eid": departure.endpoint_id, "last_frame": departure.last_frame_at})
        session.add(
            PresenceEvent(
                endpoint_id=departure.endpoint_id,
                state=PresenceState.offline,
                at=departure.last_frame_at,
                address=row.address,
                reason=departure.reason,
            )
        )
    if params:
        session.execute(statement, params)
    session.flush()
    return changed


def record_seen(session: Session, *, seen: Mapping[int, datetime], firmware: Mapping[int, str]) -> None:
    """One batch of 'last frame at' and reported firmware; ``last_seen_at`` only moves forward."""
    table = Endpoint.__table__  # type: ignore[attr-defined]
    if seen:
        statement = (
            table.update()
            .where(table.c.id == bindparam("eid"))
            .where(or_(table.c.last_seen_at.is_(None), table.c.last_seen_at < bindparam("seen")))
            .values(last_seen_at=bindparam("seen"))
        )
        session.execute(statement, [{"eid": k, "seen": seen[k]} for k in sorted(seen)])
    if firmware:
        statement = table.update().where(table.c.id == bindparam("eid")).values(firmware=bindparam("fw"))
        session.execute(statement, [{"eid": k, "fw": firmware[k]} for k in sorted(firmware)])
    session.flush()


def sweep_stale(session: Session, *, cutoff: datetime) -> list[int]:
    """Online endpoints nobody has heard from since ``cutoff`` (their gateway may be gone): offline."""
    statement = (
        update(Endpoint)
        .where(col(Endpoint.status) == EndpointStatus.online, col(Endpoint.last_seen_at) < cutoff)
        .values(status=EndpointStatus.offline)
        .returning(col(Endpoint.id), col(Endpoint.address), col(Endpoint.last_seen_at))
    )
    rows = session.execute(statement).all()
    for endpoint_id, address, last_seen_at in rows:
        session.add(
            PresenceEvent(
                endpoint_id=endpoint_id,
                state=PresenceState.offline,
                at=last_seen_at,
                address=address,
                reason=Reason.timeout,
            )
        )
    session.flush()
    return [row[0] for row in rows]


def presence_history(session: Session, *, endpoint_id: int, limit: int = 20) -> list[PresenceEvent]:
    query = select(PresenceEvent).where(PresenceEvent.endpoint_id == endpoint_id)
    query = query.order_by(col(PresenceEvent.at).desc(), col(PresenceEvent.id).desc()).limit(limit)
    return list(session.exec(query).all())


@dataclass(frozen=True)
class Connectivity:
    address: str | None
    firmware: str | None


def connectivity(session: Session, *, codes: Sequence[str]) -> dict[str, Connectivity]:
    """Last connection address and reported firmware of these endpoints, by code."""
    if not codes:
        return {}
    query = select(Endpoint.code, Endpoint.address, Endpoint.firmware).where(col(Endpoint.code).in_(codes))
    return {code: Connectivity(address, firmware) for code, address, firmware in session.exec(query).all()}


@dataclass
class PresenceCounts:
    online: int = 0
    offline: int = 0
    fault: int = 0
    disabled: int = 0

    @property
    def total(self) -> int:
        return self.online + self.offline + self.fault + self.disabled

    def add(self, status: EndpointStatus, n: int) -> None:
        setattr(self, status.value, getattr(self, status.value) + n)


@dataclass
class AreaPresence:
    code: str
    name: str
    counts: PresenceCounts = field(default_factory=PresenceCounts)


@dataclass
class PresenceSummary:
    city: PresenceCounts
    towns: list[AreaPresence]
    villages: list[AreaPresence]


def presence_summary(session: Session, *, scope: frozenset[int] | None) -> PresenceSummary:
    """Endpoints per status, for the city (or the scope), each town and each village, in code order."""
    query = (
        sql_select(
            col(Town.code),
            col(Town.name),
            col(Village.code),
            col(Village.name),
            col(Endpoint.status),
            func.count(),
        )
        .join(Village, col(Village.id) == Endpoint.village_id)
        .join(Town, col(Town.id) == Village.town_id)
        .group_by(Town.code, Town.name, Village.code, Village.name, Endpoint.status)
        .order_by(Town.code, Village.code)
    )
    if scope is not None:
        query = query.where(col(Endpoint.village_id).in_(scope))
    city = PresenceCounts()
    towns: dict[str, AreaPresence] = {}
    villages: dict[str, AreaPresence] = {}
    for town_code, town_name, village_code, village_name, status, n in session.execute(query).all():
        status = EndpointStatus(status)
        city.add(status, n)
        towns.setdefault(town_code, AreaPresence(town_code, town_name)).counts.add(status, n)
        villages.setdefault(village_code, AreaPresence(village_code, village_name)).counts.add(status, n)
    return PresenceSummary(city=city, towns=list(towns.values()), villages=list(villages.values()))
