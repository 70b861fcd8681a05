"""Shared fixtures: the same tests run on SQLite and on a real PostgreSQL.

Each pytest session makes its own PostgreSQL database (so parallel runs never collide), applies
the Alembic migrations to it once (which also tests the migrations), and empties every table
after each test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session

from broadcast import migrations
from broadcast.auth.models import Role, User
from broadcast.auth.security import issue_access_token
from broadcast.config import Settings
from broadcast.db import make_engine, metadata
from tests import builders

PG_ADMIN_URL = os.environ.get("BROADCAST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def _create_pg_database() -> tuple[str, Callable[[], None]]:
    name = f"broadcast_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}", drop


@pytest.fixture(scope="session")
def _engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Engine]]:
    sqlite = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}")
    pg_url, drop = _create_pg_database()
    postgres = make_engine(pg_url)
    engines = {"sqlite": sqlite, "postgresql": postgres}
    for engine in engines.values():
        migrations.upgrade(engine)
    yield engines
    for engine in engines.values():
        engine.dispose()
    drop()


def _empty_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, _engines: dict[str, Engine]) -> Iterator[Engine]:
    """A migrated database, on each backend in turn, emptied after the test."""
    engine = _engines[request.param]
    yield engine
    _empty_tables(engine)


@pytest.fixture
def sqlite_engine(_engines: dict[str, Engine]) -> Iterator[Engine]:
    """For tests whose subject does not touch SQL dialects (audio, TTS): SQLite only."""
    yield _engines["sqlite"]
    _empty_tables(_engines["sqlite"])


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        secret_key=TEST_SECRET,
        login_max_failures=5,
        render_workers=0,
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    from broadcast.app import create_app

    return create_app(settings, engine=engine, upgrade_db=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def users(session: Session) -> dict[Role, User]:
    """One active user per role; the village admin is scoped to the first village of the city."""
    city = builders.small_city(session)
    made = {role: builders.make_user(session, role=role) for role in Role}
    builders.scope_user(session, made[Role.village_admin], [city.villages[0]])
    session.commit()
    return made


def bearer(user: User) -> dict[str, str]:
    token, _ = issue_access_token(user_id=user.id or 0, role=user.role.value, secret=TEST_SECRET, minutes=30)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def headers(users: dict[Role, User]) -> dict[Role, dict[str, str]]:
    """Authorization headers for each role's user."""
    return {role: bearer(user) for role, user in users.items()}
