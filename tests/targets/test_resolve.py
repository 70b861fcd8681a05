"""Selector semantics as a table of cases, on SQLite and PostgreSQL, checked against an oracle."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import Session

from broadcast.errors import Invalid
from broadcast.regions.models import TAGS
from broadcast.targets.schemas import Selector
from broadcast.targets.service import resolve_endpoint_ids, resolve_selector
from tests.targets import reference
from tests.targets.conftest import Indexed, oracle_rows

ALL = set(range(12))

CASES: list[tuple[str, dict[str, Any], set[int]]] = [
    ("whole city", {"all": True}, ALL),
    ("one town", {"towns": [0]}, {0, 1, 2, 3, 4, 5}),
    ("one village", {"villages": [2]}, {6, 7, 8}),
    ("town and village are a union", {"towns": [0], "villages": [3]}, {0, 1, 2, 3, 4, 5, 9, 10, 11}),
    ("tags alone cover the city", {"tags": ["river"]}, {0, 2, 4, 6, 8, 10}),
    ("any of the tags", {"tags": ["river", "forest"]}, {0, 1, 2, 4, 5, 6, 8, 9, 10}),
    ("tags inside a town", {"towns": [1], "tags": ["school"]}, {6, 10}),
    ("all adds nothing to a town", {"all": True, "towns": [0]}, {0, 1, 2, 3, 4, 5}),
    ("one endpoint", {"endpoints": [3]}, {3}),
    ("endpoints add to tagged", {"towns": [0], "tags": ["forest"], "endpoints": [11]}, {1, 5, 11}),
    ("fixed group", {"groups": ["fixed"]}, {0, 1, 7}),
    ("group adds to tagged area", {"groups": ["fixed"], "towns": [1], "tags": ["school"]}, {0, 1, 6, 7, 10}),
    ("rule group", {"groups": ["river_t1"]}, {6, 10}),
    ("rule group over a fixed group", {"groups": ["fixed_not_v0"]}, {7}),
    ("exclude a town", {"all": True, "exclude": {"towns": [1]}}, {0, 1, 2, 3, 4, 5}),
    ("exclude a village", {"towns": [0], "exclude": {"villages": [0]}}, {3, 4, 5}),
    ("exclude a tag", {"all": True, "exclude": {"tags": ["river"]}}, {1, 3, 5, 7, 9, 11}),
    ("exclude an endpoint", {"villages": [0], "exclude": {"endpoints": [0]}}, {1, 2}),
    ("exclude a fixed group", {"all": True, "exclude": {"groups": ["fixed"]}}, ALL - {0, 1, 7}),
    ("exclude a rule group", {"all": True, "exclude": {"groups": ["river_t1"]}}, ALL - {6, 10}),
    (
        "exclusions apply to groups and endpoints too",
        {"groups": ["fixed"], "endpoints": [11], "exclude": {"tags": ["forest"]}},
        {0, 7, 11},
    ),
    ("exclusion may leave nothing", {"tags": ["school"], "exclude": {"tags": ["river"]}}, set()),
    (
        "exclusions are a union",
        {"all": True, "exclude": {"towns": [0], "tags": ["forest"]}},
        {6, 7, 8, 10, 11},
    ),
]


def test_selector_table(session: Session, city: Indexed) -> None:
    """Every case on one city (building it per case would cost more than the cases)."""
    for name, spec, expected in CASES:
        ids = resolve_endpoint_ids(session, selector=city.selector(spec))
        reached = {e.code for e in city.city.endpoints if e.id in ids}
        assert city.indices(reached) == expected, name


def _random_clause(rng: random.Random, groups: list[str]) -> dict[str, Any]:
    return {
        "towns": rng.sample(range(2), rng.randint(0, 1)),
        "villages": rng.sample(range(4), rng.randint(0, 2)),
        "tags": rng.sample(["river", "forest", "school", "market"], rng.randint(0, 2)),
        "groups": rng.sample(groups, rng.randint(0, 1)),
        "endpoints": rng.sample(range(12), rng.randint(0, 2)),
    }


def test_sql_agrees_with_the_oracle_on_random_selectors(session: Session, city: Indexed) -> None:
    rng = random.Random(7)
    rows = oracle_rows(session)
    members = {"fixed": [0, 1, 7], "river_t1": [6, 10], "fixed_not_v0": [7]}
    groups = {name: set(city.codes("endpoints", idx)) for name, idx in members.items()}
    checked = 0
    while checked < 60:
        spec = {**_random_clause(rng, list(groups)), "all": rng.random() < 0.2}
        spec["exclude"] = _random_clause(rng, list(groups)) if rng.random() < 0.7 else {}
        try:
            selector = city.selector(spec)
        except ValidationError:
            continue
        expected = reference.reached(rows, selector, groups)
        ids = resolve_endpoint_ids(session, selector=selector)
        assert {e.code for e in city.city.endpoints if e.id in ids} == expected, spec
        checked += 1


def test_unknown_values_are_named(session: Session, city: Indexed) -> None:
    selector = Selector(
        towns=["999999999", city.city.towns[0].code],
        villages=["nope"],
        tags=["river", "lava"],
        groups=["没有这个分组"],
        endpoints=["EP-missing"],
        exclude={"towns": ["888"], "tags": ["ice"]},  # type: ignore[arg-type]
    )
    with pytest.raises(Invalid) as raised:
        resolve_selector(session, selector=selector)
    assert raised.value.details["unknown"] == {
        "towns": ["999999999", "888"],
        "villages": ["nope"],
        "tags": ["lava", "ice"],
        "groups": ["没有这个分组"],
        "endpoints": ["EP-missing"],
    }
    for value in ("999999999", "888", "nope", "lava", "ice", "没有这个分组", "EP-missing"):
        assert value in raised.value.message


@pytest.mark.parametrize(
    "data",
    [{}, {"all": False}, {"exclude": {"towns": ["430181001"]}}, {"towns": [], "tags": []}],
    ids=["nothing", "all false", "only exclusions", "empty lists"],
)
def test_empty_selector_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="选择范围为空"):
        Selector.model_validate(data)


def test_selector_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Selector.model_validate({"town": ["430181001"]})


def test_every_tag_of_the_vocabulary_is_accepted(session: Session, city: Indexed) -> None:
    ids = resolve_endpoint_ids(session, selector=Selector(tags=list(TAGS)))
    reached = {e.code for e in city.city.endpoints if e.id in ids}
    assert city.indices(reached) == ALL - {3, 7, 11}
