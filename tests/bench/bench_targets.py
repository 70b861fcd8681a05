"""Target resolution on the demo city: one SQL query against a plain Python filter over rows in memory.

Baseline = the Python filter over rows already loaded (loading them is reported once, apart).

The selector is "every endpoint tagged river in 10 towns, minus one village". Both sides give
the same ids (checked); the SQL side includes the code lookups a real call makes.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from broadcast import migrations
from broadcast.db import make_engine, transaction
from broadcast.demo.city import build_demo_city
from broadcast.regions.models import Endpoint, EndpointTag, Town, TownKind, Village
from broadcast.targets.schemas import Selector
from broadcast.targets.service import resolve_endpoint_ids, resolve_selector
from tests.bench import Row, median_s

PG_ADMIN_URL = os.environ.get("BROADCAST_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RUNS = 25
CASE = "river in 10 towns minus 1 village"


@dataclass(frozen=True)
class InMemory:
    id: int
    town: str
    village: str
    tags: frozenset[str]


def _load(session: Session) -> list[InMemory]:
    tags: dict[int, set[str]] = {}
    for endpoint_id, tag in session.exec(select(EndpointTag.endpoint_id, EndpointTag.tag)).all():
        tags.setdefault(endpoint_id, set()).add(tag)
    query = (
        select(Endpoint.id, Town.code, Village.code)
        .join(Village, col(Village.id) == col(Endpoint.village_id))
        .join(Town, col(Town.id) == col(Village.town_id))
    )
    return [InMemory(i or 0, t, v, frozenset(tags.get(i or 0, ()))) for i, t, v in session.exec(query).all()]


def python_filter(rows: list[InMemory], selector: Selector) -> list[int]:
    """The baseline: what a plain loop over loaded rows does for this shape of selector."""
    towns, tags = set(selector.towns), set(selector.tags)
    excluded = set(selector.exclude.villages)
    return sorted(r.id for r in rows if r.town in towns and r.tags & tags and r.village not in excluded)


def _selector(session: Session) -> Selector:
    towns = session.exec(select(Town.code).where(Town.kind == TownKind.town).order_by(col(Town.code))).all()[
        :10
    ]
    village = session.exec(
        select(Village.code)
        .join(Town, col(Town.id) == col(Village.town_id))
        .join(Endpoint, col(Endpoint.village_id) == col(Village.id))
        .join(EndpointTag, col(EndpointTag.endpoint_id) == col(Endpoint.id))
        .where(col(Town.code).in_(towns), EndpointTag.tag == "river")
        .order_by(col(Village.code))
    ).first()
    return Selector.model_validate({"towns": towns, "tags": ["river"], "exclude": {"villages": [village]}})


def _bench(engine: Engine, backend: str) -> list[Row]:
    with Session(engine) as session:
        selector = _selector(session)
        start = time.perf_counter()
        rows = _load(session)
        load_s = time.perf_counter() - start
        expected = python_filter(rows, selector)
        got = resolve_endpoint_ids(session, selector=selector)
        if got != expected:
            raise AssertionError(
                f"{backend}: SQL reached {len(got)} endpoints, the Python filter {len(expected)}"
            )
        sql_s = median_s(lambda: resolve_endpoint_ids(session, selector=selector), runs=RUNS)
        query = resolve_selector(session, selector=selector)
        query_s = median_s(lambda: session.exec(query).all(), runs=RUNS)
        python_s = median_s(lambda: python_filter(rows, selector), runs=RUNS)
    case = f"{backend}: {CASE} ({len(got)} of {len(rows)})"
    return [
        Row("targets", f"{case}, with code lookups", sql_s, python_s),
        Row("targets", f"{case}, the query alone", query_s, python_s),
        Row("targets", f"{backend}: load {len(rows)} endpoints into memory (once)", load_s),
    ]


def _build(engine: Engine) -> float:
    migrations.upgrade(engine)
    start = time.perf_counter()
    with transaction(engine) as session:
        build_demo_city(session)
    return time.perf_counter() - start


@contextmanager
def _sqlite() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def _postgres() -> Iterator[Engine | None]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"broadcast_bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    except OperationalError:
        admin.dispose()
        yield None
        return
    engine = make_engine(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run() -> list[Row]:
    rows = []
    with _sqlite() as engine:
        rows.append(Row("targets", "sqlite: build the demo city (9,305 endpoints)", _build(engine)))
        rows.extend(_bench(engine, "sqlite"))
    with _postgres() as engine:
        if engine is None:
            rows.append(Row("targets", f"postgresql: unreachable at {PG_ADMIN_URL}, skipped", 0.0))
        else:
            rows.append(Row("targets", "postgresql: build the demo city (9,305 endpoints)", _build(engine)))
            rows.extend(_bench(engine, "postgresql"))
    return rows
