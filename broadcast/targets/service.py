"""Use cases for targets: resolve a selector to endpoints, preview it, and manage saved groups.

Public API used by campaigns and alerts: :func:`resolve_selector` (a SELECT of endpoint ids to
embed in their own queries) and :func:`resolve_endpoint_ids`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, desc, func, insert
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.clock import utc_now
from broadcast.errors import Conflict, Invalid, NotFound
from broadcast.pagination import PageParams, paginate
from broadcast.regions.models import TAGS, Endpoint, Group, GroupKind, GroupMember, Town, Village
from broadcast.targets import resolve
from broadcast.targets.schemas import (
    Clause,
    GroupCreate,
    GroupDetail,
    GroupOut,
    GroupUpdate,
    RegionCount,
    SampleEndpoint,
    Selector,
    TargetPreview,
)

SAMPLE_SIZE = 20
_LABELS = {
    "towns": "乡镇/街道",
    "villages": "村（社区）",
    "tags": "标签",
    "groups": "分组",
    "endpoints": "终端",
}


@dataclass(frozen=True)
class _Known:
    """The selector's codes and names that exist, mapped to what the query needs."""

    towns: dict[str, int]
    villages: dict[str, int]
    groups: dict[str, Group]
    endpoints: dict[str, int]


def _values(selector: Selector, kind: str) -> list[str]:
    values: list[str] = getattr(selector, kind) + getattr(selector.exclude, kind)
    return values


def _ids(session: Session, id_col: Any, key_col: Any, values: list[str]) -> dict[str, int]:
    if not values:
        return {}
    rows = session.exec(select(key_col, id_col).where(key_col.in_(values))).all()
    return dict(rows)


def _lookup(session: Session, selector: Selector) -> _Known:
    group_names = _values(selector, "groups")
    groups = session.exec(select(Group).where(col(Group.name).in_(group_names))).all() if group_names else []
    return _Known(
        towns=_ids(session, col(Town.id), col(Town.code), _values(selector, "towns")),
        villages=_ids(session, col(Village.id), col(Village.code), _values(selector, "villages")),
        groups={g.name: g for g in groups},
        endpoints=_ids(session, col(Endpoint.id), col(Endpoint.code), _values(selector, "endpoints")),
    )


def _unknown(selector: Selector, known: _Known) -> dict[str, list[str]]:
    found: dict[str, Any] = {
        "towns": known.towns,
        "villages": known.villages,
        "tags": TAGS,
        "groups": known.groups,
        "endpoints": known.endpoints,
    }
    unknown = {}
    for kind, present in found.items():
        missing = [v for v in dict.fromkeys(_values(selector, kind)) if v not in present]
        if missing:
            unknown[kind] = missing
    return unknown


def _raise_unknown(unknown: dict[str, list[str]], path: tuple[Group, ...]) -> None:
    listed = "；".join(f"{_LABELS[kind]} {'、'.join(values)}" for kind, values in unknown.items())
    where = f"分组「{path[-1].name}」的规则中" if path else ""
    raise Invalid(
        f"{where}以下取值不存在：{listed}。请检查代码、标签或分组名称",
        details={"unknown": unknown, "group": path[-1].name if path else None},
    )


def _group_ref(session: Session, group: Group, path: tuple[Group, ...]) -> resolve.GroupRef:
    if group.kind == GroupKind.fixed:
        return resolve.GroupRef(group_id=group.id or 0)
    if any(g.id == group.id for g in path):
        cycle = " → ".join([*(g.name for g in path), group.name])
        raise Invalid(f"分组规则存在循环引用：{cycle}。请去掉其中一处引用", details={"cycle": cycle})
    rule = stored_rule(group)
    return resolve.GroupRef(group_id=group.id or 0, rule=_plan(session, rule, (*path, group)))


def _clause(session: Session, clause: Clause, known: _Known, path: tuple[Group, ...]) -> resolve.ClausePlan:
    return resolve.ClausePlan(
        town_ids=tuple(known.towns[c] for c in clause.towns),
        village_ids=tuple(known.villages[c] for c in clause.villages),
        tags=tuple(clause.tags),
        groups=tuple(_group_ref(session, known.groups[n], path) for n in clause.groups),
        endpoint_ids=tuple(known.endpoints[c] for c in clause.endpoints),
    )


def _plan(session: Session, selector: Selector, path: tuple[Group, ...]) -> resolve.Plan:
    known = _lookup(session, selector)
    if unknown := _unknown(selector, known):
        _raise_unknown(unknown, path)
    return resolve.Plan(
        include=_clause(session, selector, known, path),
        all=selector.all,
        exclude=_clause(session, selector.exclude, known, path),
    )


def stored_rule(group: Group) -> Selector:
    try:
        return Selector.model_validate(group.rule)
    except ValidationError as exc:
        raise Invalid(f"分组「{group.name}」保存的规则无效，请重新编辑该分组") from exc


def resolve_selector(session: Session, *, selector: Selector) -> SelectOfScalar[int]:
    """A SELECT of ``endpoints.id`` for every endpoint the selector reaches.

    Raises ``Invalid`` (422) naming unknown towns, villages, tags, groups or endpoint codes, and
    for a cycle between rule groups. Embed it (``col(X.endpoint_id).in_(...)``) or execute it.
    """
    return resolve.endpoint_ids_query(_plan(session, selector, ()))


def resolve_endpoint_ids(session: Session, *, selector: Selector) -> list[int]:
    """The ids of every endpoint the selector reaches, ascending."""
    query = resolve_selector(session, selector=selector).order_by(col(Endpoint.id))
    return list(session.exec(query).all())


def _region_counts(session: Session, reached: Any, code: Any, name: Any, key: Any) -> list[RegionCount]:
    count = func.count(col(Endpoint.id))
    query = (
        select(code, name, count)
        .select_from(Endpoint)
        .join(Village, col(Village.id) == col(Endpoint.village_id))
        .join(Town, col(Town.id) == col(Village.town_id))
        .where(reached)
        .group_by(key, code, name)
        .order_by(desc(count), code)
    )
    return [RegionCount(code=c, name=n, count=k) for c, n, k in session.exec(query).all()]


def _sample(session: Session, reached: Any) -> list[SampleEndpoint]:
    query = (
        select(Endpoint.code, Endpoint.name, Village.code, Village.name)
        .join(Village, col(Village.id) == col(Endpoint.village_id))
        .where(reached)
        .order_by(col(Endpoint.code))
        .limit(SAMPLE_SIZE)
    )
    rows = session.exec(query).all()
    return [SampleEndpoint(code=c, name=n, village_code=vc, village_name=vn) for c, n, vc, vn in rows]


def preview(session: Session, *, selector: Selector) -> TargetPreview:
    """How many endpoints a selector reaches, where, how many are online, and a few of them."""
    reached = col(Endpoint.id).in_(resolve_selector(session, selector=selector))
    status_rows = session.exec(
        select(Endpoint.status, func.count()).where(reached).group_by(col(Endpoint.status))
    ).all()
    by_status = {str(status): int(n) for status, n in status_rows}
    total = sum(by_status.values())
    online = by_status.get("online", 0)
    return TargetPreview(
        total=total,
        online=online,
        offline=total - online,
        towns=_region_counts(session, reached, col(Town.code), col(Town.name), col(Town.id)),
        villages=_region_counts(session, reached, col(Village.code), col(Village.name), col(Village.id)),
        sample=_sample(session, reached),
    )


def count_reached(session: Session, *, selector: Selector) -> int:
    query = select(func.count()).select_from(resolve_selector(session, selector=selector).subquery())
    return int(session.exec(query).one())


def get_group_or_raise(session: Session, group_id: int) -> Group:
    group = session.get(Group, group_id)
    if group is None:
        raise NotFound(f"分组 {group_id} 不存在")
    return group


def member_codes(session: Session, group: Group) -> list[str]:
    query = (
        select(Endpoint.code)
        .join(GroupMember, col(GroupMember.endpoint_id) == col(Endpoint.id))
        .where(GroupMember.group_id == group.id)
        .order_by(col(Endpoint.code))
    )
    return list(session.exec(query).all())


def member_count(session: Session, group: Group) -> tuple[int | None, str | None]:
    """How many endpoints the group holds now, or (None, why) for a rule that no longer resolves."""
    if group.kind == GroupKind.fixed:
        query = select(func.count()).where(GroupMember.group_id == group.id)
        return int(session.exec(query).one()), None
    try:
        return count_reached(session, selector=Selector(groups=[group.name])), None
    except Invalid as exc:
        return None, exc.message


def list_groups(session: Session, *, params: PageParams) -> tuple[int, list[Group]]:
    return paginate(session, select(Group).order_by(col(Group.name)), params)


def group_out(session: Session, group: Group) -> GroupOut:
    count, problem = member_count(session, group)
    rule = stored_rule(group) if group.rule is not None else None
    fields = group.model_dump(exclude={"rule"})
    return GroupOut.model_validate({**fields, "rule": rule, "member_count": count, "problem": problem})


def group_detail(session: Session, group: Group) -> GroupDetail:
    out = group_out(session, group)
    return GroupDetail.model_validate({**out.model_dump(), "endpoint_codes": member_codes(session, group)})


def _snapshot(session: Session, group: Group) -> dict[str, Any]:
    data = audit.snapshot(group) or {}
    data["endpoint_codes"] = member_codes(session, group)
    return data


def _endpoint_ids_by_code(session: Session, codes: list[str]) -> list[int]:
    found = _ids(session, col(Endpoint.id), col(Endpoint.code), codes)
    missing = [c for c in codes if c not in found]
    if missing:
        raise Invalid(
            f"以下终端代码不存在：{'、'.join(missing)}", details={"unknown": {"endpoints": missing}}
        )
    return [found[c] for c in codes]


def _set_members(session: Session, group: Group, codes: list[str]) -> None:
    ids = _endpoint_ids_by_code(session, codes)
    session.exec(delete(GroupMember).where(col(GroupMember.group_id) == group.id))
    session.connection().execute(insert(GroupMember), [{"group_id": group.id, "endpoint_id": i} for i in ids])


def _check_rule(session: Session, group: Group | None, rule: Selector) -> dict[str, Any]:
    """The rule as stored, after checking its values exist and it never leads back to ``group``."""
    _plan(session, rule, (group,) if group else ())
    return rule.model_dump(mode="json")


def _check_name_free(session: Session, name: str) -> None:
    if session.exec(select(Group.id).where(Group.name == name)).first() is not None:
        raise Conflict(f"分组名称「{name}」已存在，请换一个名称")


def _referrers(session: Session, group: Group) -> list[str]:
    """Names of the rule groups whose rule names this group (include or exclude)."""
    rules = session.exec(select(Group).where(Group.kind == GroupKind.rule, Group.id != group.id)).all()
    return [g.name for g in rules if group.name in _values(stored_rule(g), "groups")]


def _refuse_if_referenced(session: Session, group: Group, doing: str) -> None:
    if referrers := _referrers(session, group):
        raise Conflict(
            f"分组「{group.name}」被规则分组 {'、'.join(referrers)} 引用，不能{doing}；"
            "请先修改这些分组的规则",
            details={"referenced_by": referrers},
        )


def create_group(session: Session, *, data: GroupCreate, actor: Actor) -> Group:
    _check_name_free(session, data.name)
    rule = _check_rule(session, None, data.rule) if data.rule is not None else None
    group = Group(name=data.name, description=data.description, kind=data.kind, rule=rule)
    session.add(group)
    session.flush()
    if data.kind == GroupKind.fixed:
        _set_members(session, group, data.endpoint_codes)
    after = _snapshot(session, group)
    audit.record(
        session, actor=actor, action="group.create", entity_type="group", entity_id=group.id, after=after
    )
    return group


def _apply_update(session: Session, group: Group, data: GroupUpdate) -> None:
    if data.endpoint_codes is not None and group.kind != GroupKind.fixed:
        raise Invalid("规则分组没有固定成员：请修改 rule，而不是 endpoint_codes")
    if data.rule is not None and group.kind != GroupKind.rule:
        raise Invalid("固定分组没有规则：请修改 endpoint_codes，而不是 rule")
    if data.name is not None and data.name != group.name:
        _check_name_free(session, data.name)
        _refuse_if_referenced(session, group, "改名")
        group.name = data.name
    if data.description is not None:
        group.description = data.description
    if data.rule is not None:
        group.rule = _check_rule(session, group, data.rule)
    if data.endpoint_codes is not None:
        _set_members(session, group, data.endpoint_codes)


def update_group(session: Session, *, group: Group, data: GroupUpdate, actor: Actor) -> Group:
    before = _snapshot(session, group)
    _apply_update(session, group, data)
    group.updated_at = utc_now()
    session.add(group)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="group.update",
        entity_type="group",
        entity_id=group.id,
        before=before,
        after=_snapshot(session, group),
    )
    return group


def delete_group(session: Session, *, group: Group, actor: Actor) -> None:
    _refuse_if_referenced(session, group, "删除")
    before = _snapshot(session, group)
    session.exec(delete(GroupMember).where(col(GroupMember.group_id) == group.id))
    session.delete(group)
    session.flush()
    audit.record(
        session, actor=actor, action="group.delete", entity_type="group", entity_id=group.id, before=before
    )
