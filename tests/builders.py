"""Plain typed builders for test data."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import Session, select

from broadcast.auth.models import Role, User, UserVillage
from broadcast.auth.security import hash_password
from broadcast.regions.models import Endpoint, EndpointStatus, EndpointTag, Town, Village

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery"
_PASSWORD_HASH = hash_password(PASSWORD)


def make_user(session: Session, *, role: Role, username: str | None = None, active: bool = True) -> User:
    user = User(
        username=username or f"{role.value}{next(_counter)}",
        display_name=f"测试{role.value}",
        password_hash=_PASSWORD_HASH,
        role=role,
        is_active=active,
    )
    session.add(user)
    session.flush()
    return user


def scope_user(session: Session, user: User, villages: list[Village]) -> None:
    for village in villages:
        session.add(UserVillage(user_id=user.id, village_id=village.id))  # type: ignore[arg-type]
    session.flush()


def make_town(session: Session, *, name: str | None = None, code: str | None = None) -> Town:
    # Nine digits like a real town code, increasing, so code order is creation order.
    n = next(_counter)
    town = Town(code=code or f"43{n:07d}", name=name or f"测试镇{n}")
    session.add(town)
    session.flush()
    return town


def make_village(
    session: Session, *, town: Town, name: str | None = None, code: str | None = None
) -> Village:
    n = next(_counter)
    siblings = session.exec(select(func.count()).select_from(Village).where(Village.town_id == town.id)).one()
    village = Village(
        code=code or f"{town.code}{siblings + 1:03d}", name=name or f"测试村{n}", town_id=town.id or 0
    )
    session.add(village)
    session.flush()
    return village


def make_endpoint(
    session: Session,
    *,
    village: Village,
    code: str | None = None,
    tags: tuple[str, ...] = (),
    status: EndpointStatus = EndpointStatus.online,
) -> Endpoint:
    n = next(_counter)
    endpoint = Endpoint(
        code=code or f"EP{n:06d}",
        name=f"测试终端{n}",
        village_id=village.id or 0,
        latitude=28.2,
        longitude=112.9,
        status=status,
    )
    session.add(endpoint)
    session.flush()
    for tag in tags:
        session.add(EndpointTag(endpoint_id=endpoint.id or 0, tag=tag))
    session.flush()
    return endpoint


@dataclass
class City:
    towns: list[Town] = field(default_factory=list)
    villages: list[Village] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)


def small_city(session: Session) -> City:
    """Two towns, two villages each, three endpoints per village (tags vary)."""
    city = City()
    tag_cycle = itertools.cycle([("river",), ("forest",), ("river", "school"), ()])
    for _ in range(2):
        town = make_town(session)
        city.towns.append(town)
        for _ in range(2):
            village = make_village(session, town=town)
            city.villages.append(village)
            for _ in range(3):
                city.endpoints.append(make_endpoint(session, village=village, tags=next(tag_cycle)))
    return city
