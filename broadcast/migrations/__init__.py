"""Alembic migrations, run with ``broadcast db upgrade`` (and by the server on start)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

HERE = Path(__file__).resolve().parent


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


# Any constant works; it names the lock every server process takes around migrations.
_MIGRATION_LOCK = 0x62636173745F6D69


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations between processes that start together (PostgreSQL advisory lock).

    SQLite is the embedded single-process mode, where there is nobody to race.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
            connection.commit()


def upgrade(engine: Engine, revision: str = "head") -> None:
    with migration_lock(engine):
        command.upgrade(alembic_config(engine), revision)


def current_heads(engine: Engine) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())
