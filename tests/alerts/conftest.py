"""Alert tests: a small city, two duty officers, an admin, device tokens, and a draft helper."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from broadcast.auth.models import Role, User
from broadcast.clock import utc_now
from broadcast.dispatch.models import OutboxMessage
from tests import builders
from tests.conftest import bearer
from tests.dispatch.conftest import Device, app, city, make_device, settings

__all__ = ["app", "city", "settings"]  # the device tests' fixtures: an audio store per test


@pytest.fixture
def officers(session: Session, city: builders.City) -> dict[str, User]:
    made = {
        "duty": builders.make_user(session, role=Role.duty_officer),
        "duty2": builders.make_user(session, role=Role.duty_officer),
        "admin": builders.make_user(session, role=Role.admin),
        "propagandist": builders.make_user(session, role=Role.propagandist),
        "village": builders.make_user(session, role=Role.village_admin),
    }
    session.commit()
    return made


@pytest.fixture
def auth(officers: dict[str, User]) -> dict[str, dict[str, str]]:
    return {name: bearer(user) for name, user in officers.items()}


@pytest.fixture
def devices(session: Session, city: builders.City) -> list[Device]:
    made = [make_device(session, endpoint) for endpoint in city.endpoints]
    session.commit()
    return made


def alert_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_key": uuid.uuid4().hex,
        "title": "山洪橙色预警",
        "text": "河道水位快速上涨，沿河群众请立即向高处转移。",
        "level": 3,
        "category": "flood",
        "drill": False,
        "selector": {"all": True},
        "repeat": 2,
        "valid_until": (utc_now() + timedelta(hours=2)).isoformat(),
    }
    body.update(overrides)
    return body


def draft(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/alerts", json=alert_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def sent(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    made = draft(client, headers, **overrides)
    response = client.post(
        f"/api/v1/alerts/{made['id']}/send",
        json={"reach": made["preview"]["total"], "drill": made["drill"]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def outbox(session: Session) -> list[dict[str, Any]]:
    session.expire_all()
    rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    return [row.message for row in rows]
