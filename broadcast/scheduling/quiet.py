"""Quiet hours (静默时段): the city default from settings and per-village overrides.

No campaign plays in them (the compiler drops such occurrences); alerts are not bound by them.
Every override change is audited and asks for the rundowns to be refreshed.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.errors import Invalid, NotFound
from broadcast.regions.models import Endpoint, Town, Village
from broadcast.scheduling.compiler import QuietHours
from broadcast.scheduling.models import VillageQuietHours
from broadcast.scheduling.recurrence import SchedulingError
from broadcast.scheduling.refresh import request_refresh
from broadcast.scheduling.schemas import QuietHoursIn, QuietHoursOverview, VillageQuietHoursOut


def city_quiet_hours(settings: Settings) -> QuietHours:
    """The city default (``BROADCAST_QUIET_HOURS``, e.g. 22:00-06:00); a malformed setting is a 422."""
    try:
        return QuietHours.parse(settings.quiet_hours)
    except SchedulingError as exc:
        raise Invalid(f"配置项 BROADCAST_QUIET_HOURS 无效：{exc.message}") from exc


def quiet_hours_for(session: Session, *, settings: Settings) -> dict[int, QuietHours]:
    """Every village's quiet hours by village id: its own override, else the city default."""
    default = city_quiet_hours(settings)
    result = {village_id: default for village_id in session.exec(select(Village.id)).all() if village_id}
    for row in session.exec(select(VillageQuietHours)).all():
        result[row.village_id] = QuietHours.parse(f"{row.start}-{row.end}")
    return result


def endpoint_quiet_hours(
    session: Session, *, settings: Settings, endpoint_ids: Iterable[int]
) -> dict[int, QuietHours]:
    """The quiet hours of each of these endpoints (those of its village)."""
    wanted = sorted(set(endpoint_ids))
    if not wanted:
        return {}
    by_village = quiet_hours_for(session, settings=settings)
    default = city_quiet_hours(settings)
    result: dict[int, QuietHours] = {}
    for start in range(0, len(wanted), 5000):
        chunk = wanted[start : start + 5000]
        query = select(Endpoint.id, Endpoint.village_id).where(col(Endpoint.id).in_(chunk))
        for endpoint_id, village_id in session.exec(query).all():
            result[endpoint_id or 0] = by_village.get(village_id, default)
    return result


def _out(row: VillageQuietHours, village: Village, town: Town) -> VillageQuietHoursOut:
    return VillageQuietHoursOut(
        village_code=village.code,
        village_name=village.name,
        town_code=town.code,
        start=row.start,
        end=row.end,
        updated_at=row.updated_at,
    )


def overview(session: Session, *, settings: Settings) -> QuietHoursOverview:
    """The city default and every village override, by village code."""
    query = (
        select(VillageQuietHours, Village, Town)
        .join(Village, col(Village.id) == col(VillageQuietHours.village_id))
        .join(Town, col(Town.id) == col(Village.town_id))
        .order_by(col(Village.code))
    )
    villages = [_out(row, village, town) for row, village, town in session.exec(query).all()]
    return QuietHoursOverview(city=str(city_quiet_hours(settings)), villages=villages)


def set_village_quiet_hours(
    session: Session, *, village: Village, data: QuietHoursIn, actor: Actor
) -> VillageQuietHoursOut:
    """Create or replace a village's override."""
    row = session.get(VillageQuietHours, village.id)
    before = audit.snapshot(row)
    if row is None:
        row = VillageQuietHours(village_id=village.id or 0, start=data.start, end=data.end)
    else:
        row.start, row.end, row.updated_at = data.start, data.end, utc_now()
    session.add(row)
    session.flush()
    after = {**(audit.snapshot(row) or {}), "village_code": village.code}
    audit.record(
        session,
        actor=actor,
        action="quiet_hours.set",
        entity_type="village",
        entity_id=village.code,
        before=before,
        after=after,
    )
    request_refresh(session, reason=f"quiet hours of village {village.code}")
    return _out(row, village, session.get_one(Town, village.town_id))


def clear_village_quiet_hours(session: Session, *, village: Village, actor: Actor) -> None:
    """Remove a village's override: it follows the city default again."""
    row = session.get(VillageQuietHours, village.id)
    if row is None:
        raise NotFound(f"村（社区）{village.code} 没有单独设置静默时段，使用的就是全市默认值")
    before = {**(audit.snapshot(row) or {}), "village_code": village.code}
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="quiet_hours.clear",
        entity_type="village",
        entity_id=village.code,
        before=before,
    )
    request_refresh(session, reason=f"quiet hours of village {village.code}")
