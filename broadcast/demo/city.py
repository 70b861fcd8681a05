"""Write the demo city (see :mod:`broadcast.demo.plan`) and one demo account per role.

Idempotent by detection: a database that already holds the demo city is left as it is (only
missing demo accounts are added); a database holding other towns is refused, so the demo can
never mix with real data. Rows go in with Core bulk inserts, so 9,305 endpoints take seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import Table, func, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from broadcast.auth import audit
from broadcast.auth.models import Role, User, UserVillage
from broadcast.clock import utc_now
from broadcast.config import DEFAULT_ADMIN_PASSWORD
from broadcast.demo import plan as city_plan
from broadcast.demo.plan import CityPlan, EndpointPlan, VillagePlan
from broadcast.errors import Conflict
from broadcast.regions.models import Endpoint, EndpointStatus, EndpointTag, Town, Village

Progress = Callable[[str, int, int], None]  # (step, rows done, rows in all)
CHUNK = 1000
DEMO_PASSWORD = "demo-2026"  # noqa: S105 - printed on purpose; seed-demo refuses production mode
# The demo passwords are public, so a light argon2 is enough (the house parameters cost about a
# second per hash); login's verify_and_update rehashes them with the house parameters.
_DEMO_HASHER = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=1),))


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: Role
    display_name: str
    village_code: str | None = None
    created: bool = True
    password_works: bool = True  # False when someone changed the password of an existing account
    scope: str = "全市"


@dataclass(frozen=True)
class DemoSummary:
    seed: int
    created: bool
    towns: int
    villages: int
    endpoints: int
    offline: int
    fault: int
    logins: list[DemoLogin] = field(default_factory=list)


def _demo_users(village_code: str, scope: str) -> list[DemoLogin]:
    return [
        DemoLogin("admin", DEFAULT_ADMIN_PASSWORD, Role.admin, "系统管理员"),
        DemoLogin("xuanchuan", DEMO_PASSWORD, Role.propagandist, "宣传科 李晓"),
        DemoLogin("zhiban", DEMO_PASSWORD, Role.duty_officer, "值班员 张强"),
        DemoLogin("zhiban2", DEMO_PASSWORD, Role.duty_officer, "值班员 刘芳"),
        DemoLogin("cunguan", DEMO_PASSWORD, Role.village_admin, "村管理员 王建国", village_code, scope=scope),
    ]


def admin_village(plan: CityPlan) -> VillagePlan:
    """The village of the demo village admin: the first mountain village with forest speakers."""
    return next(v for v in plan.villages if v.terrain == "mountain" and "forest" in v.features)


def _demo_present_or_raise(session: Session, plan: CityPlan) -> bool:
    first = plan.towns[0]
    if session.exec(select(Town).where(Town.code == first.code, Town.name == first.name)).first():
        return True
    if session.exec(select(Town.id)).first() is not None:
        raise Conflict(
            "数据库中已有非演示的乡镇数据，拒绝生成演示城市以免混入真实数据；请换一个空数据库（BROADCAST_DATABASE_URL）"
        )
    return False


def _bulk(session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> None:
    table: Table = model.__table__  # type: ignore[attr-defined]
    session.connection().execute(insert(table), list(rows))


def _ids_by_code(session: Session, model: type[Town] | type[Village] | type[Endpoint]) -> dict[str, int]:
    return {code: ident for code, ident in session.exec(select(model.code, model.id)).all() if ident}


def _stamped(rows: Iterable[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    return [{**row, "created_at": now, "updated_at": now} for row in rows]


def _insert_regions(session: Session, plan: CityPlan, now: datetime) -> dict[str, int]:
    towns = ({"code": t.code, "name": t.name, "kind": t.kind} for t in plan.towns)
    _bulk(session, Town, _stamped(towns, now))
    town_ids = _ids_by_code(session, Town)
    villages = (
        {"code": v.code, "name": v.name, "kind": v.kind, "town_id": town_ids[v.town_code]}
        for v in plan.villages
    )
    _bulk(session, Village, _stamped(villages, now))
    return _ids_by_code(session, Village)


def _endpoint_row(e: EndpointPlan, village_ids: dict[str, int], now: datetime) -> dict[str, Any]:
    last_seen = now - timedelta(hours=e.silent_h)
    return {
        "code": e.code,
        "name": e.name,
        "village_id": village_ids[e.village_code],
        "latitude": e.latitude,
        "longitude": e.longitude,
        "status": e.status,
        "last_seen_at": last_seen,
        "volume": 80,
        "created_at": now,
        "updated_at": now,
    }


def _insert_endpoints(
    session: Session, plan: CityPlan, village_ids: dict[str, int], now: datetime, progress: Progress
) -> None:
    total = len(plan.endpoints) + sum(len(e.tags) for e in plan.endpoints)
    for start in range(0, len(plan.endpoints), CHUNK):
        chunk = plan.endpoints[start : start + CHUNK]
        _bulk(session, Endpoint, [_endpoint_row(e, village_ids, now) for e in chunk])
        progress("终端", start + len(chunk), total)
    endpoint_ids = _ids_by_code(session, Endpoint)
    tags = [{"endpoint_id": endpoint_ids[e.code], "tag": t} for e in plan.endpoints for t in e.tags]
    for start in range(0, len(tags), CHUNK):
        chunk_tags = tags[start : start + CHUNK]
        _bulk(session, EndpointTag, chunk_tags)
        progress("标签", len(plan.endpoints) + start + len(chunk_tags), total)


def _ensure_users(session: Session, plan: CityPlan) -> list[DemoLogin]:
    village = admin_village(plan)
    town = next(t for t in plan.towns if t.code == village.town_code)
    village_id = session.exec(select(Village.id).where(Village.code == village.code)).one()
    logins = []
    for login in _demo_users(village.code, f"{town.name}{village.name}（{village.code}）"):
        existing = session.exec(select(User).where(User.username == login.username)).first()
        if existing is not None:
            works = _DEMO_HASHER.verify(login.password, existing.password_hash)
            logins.append(replace(login, created=False, password_works=works))
            continue
        user = User(
            username=login.username,
            display_name=login.display_name,
            password_hash=_DEMO_HASHER.hash(login.password),
            role=login.role,
        )
        session.add(user)
        session.flush()
        if login.village_code:
            session.add(UserVillage(user_id=user.id or 0, village_id=village_id or 0))
        logins.append(login)
    session.flush()
    return logins


def _count(session: Session, model: type[SQLModel], *where: Any) -> int:
    return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


def _summary(session: Session, seed: int, created: bool, logins: list[DemoLogin]) -> DemoSummary:
    return DemoSummary(
        seed=seed,
        created=created,
        towns=_count(session, Town),
        villages=_count(session, Village),
        endpoints=_count(session, Endpoint),
        offline=_count(session, Endpoint, col(Endpoint.status) == EndpointStatus.offline),
        fault=_count(session, Endpoint, col(Endpoint.status) == EndpointStatus.fault),
        logins=logins,
    )


def _audit(session: Session, summary: DemoSummary, digest: str) -> None:
    after = {
        "seed": summary.seed,
        "city_created": summary.created,
        "towns": summary.towns,
        "villages": summary.villages,
        "endpoints": summary.endpoints,
        "digest": digest,
        "users_created": [login.username for login in summary.logins if login.created],
    }
    audit.record(session, actor=audit.CLI, action="demo.seed", entity_type="demo", after=after)


def _no_progress(_step: str, _done: int, _total: int) -> None:
    return None


def build_demo_city(session: Session, *, seed: int = 2026, progress: Progress | None = None) -> DemoSummary:
    """Build the demo city and its accounts, or leave an existing demo city as it is.

    Refuses (``Conflict``) a database that holds other towns. Audits one summary entry when
    anything was written; a re-run that finds everything in place writes nothing.
    """
    report = progress or _no_progress
    plan = city_plan.plan_city(seed)
    created = not _demo_present_or_raise(session, plan)
    if created:
        now = utc_now()
        village_ids = _insert_regions(session, plan, now)
        _insert_endpoints(session, plan, village_ids, now, report)
    logins = _ensure_users(session, plan)
    summary = _summary(session, seed, created, logins)
    if created or any(login.created for login in logins):
        _audit(session, summary, demo_digest(session) if created else "")
    return summary


def demo_digest(session: Session) -> str:
    """The digest of the stored city, comparable with :meth:`CityPlan.digest`."""
    towns = session.exec(select(Town.code, Town.name, Town.kind)).all()
    villages = session.exec(
        select(Village.code, Village.name, Village.kind, Town.code).join(
            Town, col(Town.id) == col(Village.town_id)
        )
    ).all()
    tags: dict[int, list[str]] = {}
    for endpoint_id, tag in session.exec(select(EndpointTag.endpoint_id, EndpointTag.tag)).all():
        tags.setdefault(endpoint_id, []).append(tag)
    wide = sa_select(
        col(Endpoint.id),
        col(Endpoint.code),
        col(Endpoint.name),
        col(Village.code),
        col(Endpoint.latitude),
        col(Endpoint.longitude),
        col(Endpoint.status),
    ).join(Village, col(Village.id) == col(Endpoint.village_id))
    endpoints = session.connection().execute(wide).all()
    lines = [city_plan.town_line(c, n, k) for c, n, k in towns]
    lines += [city_plan.village_line(c, n, k, t) for c, n, k, t in villages]
    lines += [
        city_plan.endpoint_line(c, n, v, lat or 0.0, lon or 0.0, s, tuple(tags.get(i or 0, ())))
        for i, c, n, v, lat, lon, s in endpoints
    ]
    return city_plan.digest_of(lines)
