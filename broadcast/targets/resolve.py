"""Target resolution as one SQL query: a resolved selector (ids, not codes) in, a SELECT out.

Pure: no session, no lookups. ``service`` turns codes and group names into a :class:`Plan`
(and refuses unknown values and cycles); this module only composes SQLAlchemy expressions,
so the same query runs on SQLite and PostgreSQL and can be embedded as a subquery by
campaigns and alerts. Every sub-select is uncorrelated on purpose: embedding the result in
another query over ``endpoints`` must not silently correlate with the outer table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, false, not_, or_, true
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from broadcast.regions.models import Endpoint, EndpointTag, GroupMember, Village


@dataclass(frozen=True)
class GroupRef:
    """A group as the query needs it: fixed groups by id, rule groups by their resolved rule."""

    group_id: int
    rule: Plan | None = None


@dataclass(frozen=True)
class ClausePlan:
    town_ids: tuple[int, ...] = ()
    village_ids: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    groups: tuple[GroupRef, ...] = ()
    endpoint_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Plan:
    include: ClausePlan
    all: bool = False
    exclude: ClausePlan = field(default_factory=ClausePlan)


def _in_towns(town_ids: tuple[int, ...]) -> ColumnElement[bool]:
    return col(Village.town_id).in_(town_ids)


def _in_villages(village_ids: tuple[int, ...]) -> ColumnElement[bool]:
    return col(Endpoint.village_id).in_(village_ids)


def _has_any_tag(tags: tuple[str, ...]) -> ColumnElement[bool]:
    tagged = select(EndpointTag.endpoint_id).where(col(EndpointTag.tag).in_(tags)).correlate(None)
    return col(Endpoint.id).in_(tagged)


def _in_groups(groups: tuple[GroupRef, ...]) -> list[ColumnElement[bool]]:
    fixed_ids = [g.group_id for g in groups if g.rule is None]
    parts = [predicate(g.rule) for g in groups if g.rule is not None]
    if fixed_ids:
        members = select(GroupMember.endpoint_id).where(col(GroupMember.group_id).in_(fixed_ids))
        members = members.correlate(None)
        parts.insert(0, col(Endpoint.id).in_(members))
    return parts


def _area(plan: Plan) -> ColumnElement[bool] | None:
    """The tagged area, or None when the selector names no area and no tags."""
    include = plan.include
    regions = []
    if include.town_ids:
        regions.append(_in_towns(include.town_ids))
    if include.village_ids:
        regions.append(_in_villages(include.village_ids))
    if not (regions or plan.all or include.tags):
        return None
    area = or_(*regions) if regions else true()
    return and_(area, _has_any_tag(include.tags)) if include.tags else area


def _excluded(clause: ClausePlan) -> list[ColumnElement[bool]]:
    parts = []
    if clause.town_ids:
        parts.append(_in_towns(clause.town_ids))
    if clause.village_ids:
        parts.append(_in_villages(clause.village_ids))
    if clause.tags:
        parts.append(_has_any_tag(clause.tags))
    parts.extend(_in_groups(clause.groups))
    if clause.endpoint_ids:
        parts.append(col(Endpoint.id).in_(clause.endpoint_ids))
    return parts


def predicate(plan: Plan) -> ColumnElement[bool]:
    """True for the (endpoint, village) rows the plan reaches."""
    reached = []
    if (area := _area(plan)) is not None:
        reached.append(area)
    reached.extend(_in_groups(plan.include.groups))
    if plan.include.endpoint_ids:
        reached.append(col(Endpoint.id).in_(plan.include.endpoint_ids))
    included = or_(*reached) if reached else false()
    excluded = _excluded(plan.exclude)
    return and_(included, not_(or_(*excluded))) if excluded else included


def endpoint_ids_query(plan: Plan) -> SelectOfScalar[int]:
    """SELECT endpoints.id of every endpoint the plan reaches (unordered)."""
    query = select(Endpoint.id).join(Village, col(Village.id) == col(Endpoint.village_id))
    return query.where(predicate(plan)).correlate(None)  # type: ignore[return-value]
