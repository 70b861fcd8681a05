"""Transactions behave alike on both databases: a savepoint never commits on its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session


@pytest.fixture
def table(engine: Engine) -> Iterator[str]:
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS savepoint_probe")
        connection.exec_driver_sql("CREATE TABLE savepoint_probe (x INTEGER PRIMARY KEY)")
    yield "savepoint_probe"
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE savepoint_probe")


def _rows(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT x FROM savepoint_probe ORDER BY x")).scalars())


def test_a_rollback_undoes_a_released_savepoint_that_opened_the_transaction(
    engine: Engine, table: str
) -> None:
    with Session(engine) as session:
        with session.begin_nested():
            session.execute(text(f"INSERT INTO {table} VALUES (1)"))
        assert _rows(engine) == []  # nothing visible to others before the commit
        session.rollback()
    assert _rows(engine) == []


def test_a_failed_savepoint_rolls_back_alone_and_the_transaction_commits_the_rest(
    engine: Engine, table: str
) -> None:
    with Session(engine) as session:
        with session.begin_nested():
            session.execute(text(f"INSERT INTO {table} VALUES (1)"))
        with pytest.raises(IntegrityError), session.begin_nested():
            session.execute(text(f"INSERT INTO {table} VALUES (1)"))
        session.execute(text(f"INSERT INTO {table} VALUES (2)"))
        session.commit()
    assert _rows(engine) == [1, 2]
