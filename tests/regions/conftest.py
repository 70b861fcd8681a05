"""The small city the ``users`` fixture builds, read back in creation order."""

from __future__ import annotations

import itertools

import pytest
from sqlmodel import Session, col, select

from broadcast.auth.models import Role, User
from broadcast.regions.models import Endpoint, Town, Village
from tests import builders
from tests.builders import City


@pytest.fixture(autouse=True)
def _fresh_builder_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    # builders numbers codes from one process-wide counter; past 999 a village code outgrows
    # its 12 characters. Tables are emptied after each test, so numbering can restart.
    monkeypatch.setattr(builders, "_counter", itertools.count(1))


@pytest.fixture
def city(session: Session, users: dict[Role, User]) -> City:
    """Two towns, four villages, twelve endpoints; the village admin sees ``villages[0]`` only."""
    return City(
        towns=list(session.exec(select(Town).order_by(col(Town.id))).all()),
        villages=list(session.exec(select(Village).order_by(col(Village.id))).all()),
        endpoints=list(session.exec(select(Endpoint).order_by(col(Endpoint.id))).all()),
    )


@pytest.fixture
def admin(headers: dict[Role, dict[str, str]]) -> dict[str, str]:
    return headers[Role.admin]


@pytest.fixture
def wang(headers: dict[Role, dict[str, str]]) -> dict[str, str]:
    """The village admin."""
    return headers[Role.village_admin]
