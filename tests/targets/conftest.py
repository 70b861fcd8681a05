"""A small city with saved groups, and helpers that write selectors by index into it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import Session, col, select

from broadcast.auth.audit import CLI
from broadcast.regions.models import Endpoint, EndpointTag, GroupKind, Town, Village
from broadcast.targets import service
from broadcast.targets.schemas import GroupCreate, Selector
from tests import builders
from tests.builders import City
from tests.targets.reference import Row


@dataclass
class Indexed:
    """The city by position: towns t0 t1; villages v0 v1 (t0), v2 v3 (t1); endpoints e0..e11.

    Tags by endpoint: e0 river, e1 forest, e2 river+school, e3 none, repeating every four.
    """

    city: City

    def codes(self, kind: str, indices: list[int]) -> list[str]:
        items: list[Any] = getattr(self.city, kind)
        return [items[i].code for i in indices]

    def clause(self, spec: dict[str, Any]) -> dict[str, Any]:
        out = dict(spec)
        for key in ("towns", "villages", "endpoints"):
            if key in spec:
                out[key] = self.codes(key, spec[key])
        return out

    def selector(self, spec: dict[str, Any]) -> Selector:
        data = self.clause(spec)
        if "exclude" in spec:
            data["exclude"] = self.clause(spec["exclude"])
        return Selector.model_validate(data)

    def indices(self, codes: list[str] | set[str]) -> set[int]:
        by_code = {e.code: i for i, e in enumerate(self.city.endpoints)}
        return {by_code[c] for c in codes}


def load_city(session: Session) -> City:
    """The city as stored, in id order (for tests whose city was built by another fixture)."""
    return City(
        towns=list(session.exec(select(Town).order_by(col(Town.id))).all()),
        villages=list(session.exec(select(Village).order_by(col(Village.id))).all()),
        endpoints=list(session.exec(select(Endpoint).order_by(col(Endpoint.id))).all()),
    )


def oracle_rows(session: Session) -> list[Row]:
    query = (
        select(Endpoint.code, Village.code, Town.code, Endpoint.id)
        .join(Village, col(Village.id) == col(Endpoint.village_id))
        .join(Town, col(Town.id) == col(Village.town_id))
    )
    tags: dict[int, set[str]] = {}
    for endpoint_id, tag in session.exec(select(EndpointTag.endpoint_id, EndpointTag.tag)).all():
        tags.setdefault(endpoint_id, set()).add(tag)
    return [Row(e, v, t, frozenset(tags.get(i, ()))) for e, v, t, i in session.exec(query).all()]


@pytest.fixture
def city(session: Session) -> Indexed:
    """The small city, plus groups: ``fixed`` = e0 e1 e7; ``river_t1`` = river in t1 minus e8;
    ``fixed_not_v0`` = members of ``fixed`` outside v0."""
    indexed = Indexed(builders.small_city(session))
    service.create_group(
        session,
        data=GroupCreate(
            name="fixed", kind=GroupKind.fixed, endpoint_codes=indexed.codes("endpoints", [0, 1, 7])
        ),
        actor=CLI,
    )
    rules = {
        "river_t1": {"towns": [1], "tags": ["river"], "exclude": {"endpoints": [8]}},
        "fixed_not_v0": {"groups": ["fixed"], "exclude": {"villages": [0]}},
    }
    for name, spec in rules.items():
        data = GroupCreate(name=name, kind=GroupKind.rule, rule=indexed.selector(spec))
        service.create_group(session, data=data, actor=CLI)
    session.commit()
    return indexed
