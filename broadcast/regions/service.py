"""Use cases for the city: towns, villages and endpoints, read through a village admin's scope.

A scope is the set of village ids a village admin may see (``None`` = the whole city). Lists are
filtered to it; asking by name for something outside it is a 403, never a silent empty list.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import delete, func, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.clock import utc_now
from broadcast.errors import Conflict, Forbidden, Invalid, NotFound
from broadcast.pagination import PageParams, paginate
from broadcast.regions.models import TAGS, Endpoint, EndpointStatus, EndpointTag, Town, Village
from broadcast.regions.schemas import (
    EndpointCreate,
    EndpointFilters,
    EndpointOut,
    EndpointUpdate,
    TownCreate,
    TownUpdate,
    VillageCreate,
    VillageOut,
    VillageUpdate,
)

Scope = frozenset[int] | None
T = TypeVar("T")
CHUNK = 1000  # ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _forbid_village(village: Village) -> Forbidden:
    return Forbidden(
        f"无权访问村（社区）{village.name}（{village.code}）：村管理员只能查看自己负责的村（社区）",
        details={"village": village.code},
    )


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    code: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    entity_type = action.split(".")[0]
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=code,
        before=before,
        after=after,
    )


# Towns ----------------------------------------------------------------------------------------


def list_towns(session: Session, *, scope: Scope) -> list[Town]:
    query = select(Town).order_by(col(Town.code))
    if scope is not None:
        query = query.where(col(Town.id).in_(select(Village.town_id).where(col(Village.id).in_(scope))))
    return list(session.exec(query).all())


def get_town_or_raise(session: Session, code: str, *, scope: Scope = None) -> Town:
    town = session.exec(select(Town).where(Town.code == code)).first()
    if town is None:
        raise NotFound(f"乡镇（街道）{code} 不存在")
    if scope is not None and not _town_in_scope(session, town, scope):
        raise Forbidden(
            f"无权访问乡镇（街道）{town.name}（{town.code}）：其中没有您负责的村（社区）",
            details={"town": town.code},
        )
    return town


def _town_in_scope(session: Session, town: Town, scope: frozenset[int]) -> bool:
    query = select(func.count()).where(Village.town_id == town.id, col(Village.id).in_(scope))
    return bool(session.exec(query).one())


def _town_conflicts(session: Session, *, code: str | None, name: str | None, own_id: int | None) -> None:
    for field, value in (("code", code), ("name", name)):
        if value is None:
            continue
        found = session.exec(select(Town).where(getattr(Town, field) == value)).first()
        if found is not None and found.id != own_id:
            label = "代码" if field == "code" else "名称"
            raise Conflict(f"乡镇（街道）{label} {value} 已存在", details={field: value})


def create_town(session: Session, *, data: TownCreate, actor: Actor) -> Town:
    _town_conflicts(session, code=data.code, name=data.name, own_id=None)
    town = Town.model_validate(data)
    session.add(town)
    session.flush()
    _audit(session, actor, "town.create", town.code, after=audit.snapshot(town))
    return town


def update_town(session: Session, *, town: Town, data: TownUpdate, actor: Actor) -> Town:
    before = audit.snapshot(town)
    _town_conflicts(session, code=None, name=data.name, own_id=town.id)
    town.sqlmodel_update(data.model_dump(exclude_unset=True, exclude_none=True))
    town.updated_at = utc_now()
    session.add(town)
    session.flush()
    _audit(session, actor, "town.update", town.code, before=before, after=audit.snapshot(town))
    return town


def delete_town(session: Session, *, town: Town, actor: Actor) -> None:
    count = session.exec(select(func.count()).where(Village.town_id == town.id)).one()
    if count:
        raise Conflict(
            f"乡镇（街道）{town.name} 下还有 {count} 个村（社区），请先删除或迁移它们",
            details={"villages": count},
        )
    before = audit.snapshot(town)
    session.delete(town)
    session.flush()
    _audit(session, actor, "town.delete", town.code, before=before)


# Villages -------------------------------------------------------------------------------------


def village_out(village: Village, town: Town) -> VillageOut:
    return VillageOut(
        code=village.code, name=village.name, kind=village.kind, town_code=town.code, town_name=town.name
    )


def list_villages(
    session: Session, *, scope: Scope, town: str | None, q: str | None = None
) -> list[VillageOut]:
    query = select(Village, Town).join(Town, col(Town.id) == Village.town_id).order_by(col(Village.code))
    if town is not None:
        query = query.where(Village.town_id == _town_filter(session, town, scope))
    if q:
        query = query.where(
            or_(col(Village.code).ilike(_like(q), "\\"), col(Village.name).ilike(_like(q), "\\"))
        )
    if scope is not None:
        query = query.where(col(Village.id).in_(scope))
    return [village_out(village, town_row) for village, town_row in session.exec(query).all()]


def get_village_or_raise(session: Session, code: str, *, scope: Scope = None) -> Village:
    village = session.exec(select(Village).where(Village.code == code)).first()
    if village is None:
        raise NotFound(f"村（社区）{code} 不存在")
    if scope is not None and village.id not in scope:
        raise _forbid_village(village)
    return village


def get_village_out(session: Session, village: Village) -> VillageOut:
    return village_out(village, session.get_one(Town, village.town_id))


def _village_snapshot(session: Session, village: Village) -> dict[str, Any]:
    return {**(audit.snapshot(village) or {}), "town_code": session.get_one(Town, village.town_id).code}


def _town_by_code(session: Session, code: str) -> Town:
    town = session.exec(select(Town).where(Town.code == code)).first()
    if town is None:
        raise Invalid(f"乡镇（街道）代码 {code} 不存在，请先创建该乡镇", details={"town_code": code})
    return town


def create_village(session: Session, *, data: VillageCreate, actor: Actor) -> Village:
    if session.exec(select(Village).where(Village.code == data.code)).first():
        raise Conflict(f"村（社区）代码 {data.code} 已存在", details={"code": data.code})
    town = _town_by_code(session, data.town_code)
    village = Village(code=data.code, name=data.name, kind=data.kind, town_id=town.id or 0)
    session.add(village)
    session.flush()
    _audit(session, actor, "village.create", village.code, after=_village_snapshot(session, village))
    return village


def update_village(session: Session, *, village: Village, data: VillageUpdate, actor: Actor) -> Village:
    before = _village_snapshot(session, village)
    if data.town_code is not None:
        village.town_id = _town_by_code(session, data.town_code).id or 0
    village.sqlmodel_update(data.model_dump(exclude_unset=True, exclude_none=True, exclude={"town_code"}))
    village.updated_at = utc_now()
    session.add(village)
    session.flush()
    _audit(
        session,
        actor,
        "village.update",
        village.code,
        before=before,
        after=_village_snapshot(session, village),
    )
    return village


def delete_village(session: Session, *, village: Village, actor: Actor) -> None:
    count = session.exec(select(func.count()).where(Endpoint.village_id == village.id)).one()
    if count:
        raise Conflict(
            f"村（社区）{village.name} 下还有 {count} 个终端，请先删除或迁移它们",
            details={"endpoints": count},
        )
    before = _village_snapshot(session, village)
    session.delete(village)
    session.flush()
    _audit(session, actor, "village.delete", village.code, before=before)


# Endpoints ------------------------------------------------------------------------------------


def _town_filter(session: Session, code: str, scope: Scope) -> int:
    town = session.exec(select(Town).where(Town.code == code)).first()
    if town is None:
        raise Invalid(f"未知的乡镇（街道）代码：{code}", details={"town": code})
    if scope is not None:
        get_town_or_raise(session, code, scope=scope)
    return town.id or 0


def _village_filter(session: Session, code: str, scope: Scope) -> int:
    village = session.exec(select(Village).where(Village.code == code)).first()
    if village is None:
        raise Invalid(f"未知的村（社区）代码：{code}", details={"village": code})
    if scope is not None and village.id not in scope:
        raise _forbid_village(village)
    return village.id or 0


def _check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    valid = list(choices)
    if value not in valid:
        raise Invalid(
            f"未知的{name}：{value}；可用值：{'、'.join(valid)}", details={"value": value, "allowed": valid}
        )


def endpoint_query(session: Session, *, filters: EndpointFilters, scope: Scope) -> SelectOfScalar[Endpoint]:
    """The filtered endpoints, ordered by code; unknown filter values are a 422 naming them."""
    query = select(Endpoint).join(Village, col(Village.id) == Endpoint.village_id)
    if filters.town is not None:
        query = query.where(Village.town_id == _town_filter(session, filters.town, scope))
    if filters.village is not None:
        query = query.where(Endpoint.village_id == _village_filter(session, filters.village, scope))
    if filters.tag is not None:
        _check_choice("标签", filters.tag, TAGS)
        tagged = select(EndpointTag.endpoint_id).where(EndpointTag.tag == filters.tag)
        query = query.where(col(Endpoint.id).in_(tagged))
    if filters.status is not None:
        _check_choice("状态", filters.status, (s.value for s in EndpointStatus))
        query = query.where(Endpoint.status == EndpointStatus(filters.status))
    if filters.q:
        pattern = _like(filters.q)
        query = query.where(
            or_(col(Endpoint.code).ilike(pattern, "\\"), col(Endpoint.name).ilike(pattern, "\\"))
        )
    if scope is not None:
        query = query.where(col(Endpoint.village_id).in_(scope))
    return query.order_by(col(Endpoint.code))


def tags_of(session: Session, endpoint_ids: Sequence[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {i: [] for i in endpoint_ids}
    for part in chunked(list(endpoint_ids)):
        query = select(EndpointTag.endpoint_id, EndpointTag.tag).where(col(EndpointTag.endpoint_id).in_(part))
        for endpoint_id, tag in session.exec(query).all():
            tags[endpoint_id].append(tag)
    return {i: sorted(t) for i, t in tags.items()}


def endpoint_outs(session: Session, endpoints: Sequence[Endpoint]) -> list[EndpointOut]:
    """Output rows for many endpoints in a few queries (not one per endpoint)."""
    village_ids = sorted({e.village_id for e in endpoints})
    query = select(Village, Town).join(Town, col(Town.id) == Village.town_id)
    places = {v.id: (v, t) for v, t in session.exec(query.where(col(Village.id).in_(village_ids))).all()}
    tags = tags_of(session, [e.id or 0 for e in endpoints])
    outs = []
    for e in endpoints:
        village, town = places[e.village_id]
        outs.append(
            EndpointOut(
                **e.model_dump(include={"code", "name", "latitude", "longitude", "status", "volume"}),
                last_seen_at=e.last_seen_at,
                village_code=village.code,
                village_name=village.name,
                town_code=town.code,
                town_name=town.name,
                tags=tags[e.id or 0],
            )
        )
    return outs


def list_endpoints(
    session: Session, *, filters: EndpointFilters, scope: frozenset[int] | None, params: PageParams
) -> tuple[int, list[EndpointOut]]:
    total, rows = paginate(session, endpoint_query(session, filters=filters, scope=scope), params)
    return total, endpoint_outs(session, rows)


def get_endpoint_or_raise(session: Session, code: str, *, scope: Scope = None) -> Endpoint:
    endpoint = session.exec(select(Endpoint).where(Endpoint.code == code)).first()
    if endpoint is None:
        raise NotFound(f"终端 {code} 不存在")
    if scope is not None and endpoint.village_id not in scope:
        village = session.get_one(Village, endpoint.village_id)
        raise Forbidden(
            f"无权访问终端 {code}：它属于村（社区）{village.name}，不在您负责的范围内",
            details={"endpoint": code},
        )
    return endpoint


def endpoint_snapshot(session: Session, endpoint: Endpoint) -> dict[str, Any]:
    village = session.get_one(Village, endpoint.village_id)
    tags = tags_of(session, [endpoint.id or 0])[endpoint.id or 0]
    return {**(audit.snapshot(endpoint) or {}), "village_code": village.code, "tags": tags}


def _set_tags(session: Session, endpoint: Endpoint, tags: list[str]) -> None:
    session.exec(delete(EndpointTag).where(col(EndpointTag.endpoint_id) == endpoint.id))
    session.add_all(EndpointTag(endpoint_id=endpoint.id or 0, tag=tag) for tag in tags)


def _village_id(session: Session, code: str) -> int:
    village = session.exec(select(Village).where(Village.code == code)).first()
    if village is None:
        raise Invalid(f"村（社区）代码 {code} 不存在，请先创建该村（社区）", details={"village_code": code})
    return village.id or 0


def create_endpoint(session: Session, *, data: EndpointCreate, actor: Actor) -> Endpoint:
    if session.exec(select(Endpoint).where(Endpoint.code == data.code)).first():
        raise Conflict(f"终端代码 {data.code} 已存在", details={"code": data.code})
    endpoint = Endpoint.model_validate(data, update={"village_id": _village_id(session, data.village_code)})
    session.add(endpoint)
    session.flush()
    _set_tags(session, endpoint, data.tags)
    session.flush()
    _audit(session, actor, "endpoint.create", endpoint.code, after=endpoint_snapshot(session, endpoint))
    return endpoint


def update_endpoint(session: Session, *, endpoint: Endpoint, data: EndpointUpdate, actor: Actor) -> Endpoint:
    before = endpoint_snapshot(session, endpoint)
    changes = data.model_dump(exclude_unset=True, exclude={"village_code", "tags"})
    required = {"name", "volume", "status"}
    endpoint.sqlmodel_update({k: v for k, v in changes.items() if v is not None or k not in required})
    if data.village_code is not None:
        endpoint.village_id = _village_id(session, data.village_code)
    if data.tags is not None:
        _set_tags(session, endpoint, data.tags)
    endpoint.updated_at = utc_now()
    session.add(endpoint)
    session.flush()
    _audit(
        session,
        actor,
        "endpoint.update",
        endpoint.code,
        before=before,
        after=endpoint_snapshot(session, endpoint),
    )
    return endpoint


def delete_endpoint(session: Session, *, endpoint: Endpoint, actor: Actor) -> None:
    """Its tags, device tokens and group memberships go with it (ON DELETE CASCADE)."""
    before = endpoint_snapshot(session, endpoint)
    session.delete(endpoint)
    session.flush()
    _audit(session, actor, "endpoint.delete", endpoint.code, before=before)
