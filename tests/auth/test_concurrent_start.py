"""Several server processes starting together on one fresh PostgreSQL database."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from broadcast import migrations
from broadcast.auth.models import User
from broadcast.auth.service import ensure_bootstrap_admin
from broadcast.config import Settings
from broadcast.db import make_engine, transaction
from tests.conftest import _create_pg_database


def _start(engine: Engine, settings: Settings, errors: list[BaseException]) -> None:
    try:
        migrations.upgrade(engine)
        with transaction(engine) as session:
            ensure_bootstrap_admin(session, settings=settings)
    except BaseException as exc:  # collected and asserted on by the test
        errors.append(exc)


def test_servers_starting_together_migrate_once_and_make_one_admin(settings: Settings) -> None:
    url, drop = _create_pg_database()
    engines = [make_engine(url) for _ in range(3)]
    errors: list[BaseException] = []
    try:
        threads = [threading.Thread(target=_start, args=(e, settings, errors)) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        with Session(engines[0]) as session:
            assert session.exec(select(func.count()).select_from(User)).one() == 1
    finally:
        for engine in engines:
            engine.dispose()
        drop()
