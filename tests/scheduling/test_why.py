"""The "why" views: an endpoint's and a village's day, stored or forecast, and the village admin's scope."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, col, select

from broadcast.auth.models import Role
from broadcast.config import Settings
from broadcast.deps import reject_unknown_query
from broadcast.regions.models import Endpoint, Village
from broadcast.scheduling.materialize import materialize
from broadcast.scheduling.models import RundownSlot
from broadcast.scheduling.recurrence import SHANGHAI
from tests.scheduling.campaign_builders import playlist_revision
from tests.scheduling.rundown_builders import make_campaign

SEASON = (date(2026, 5, 1), date(2026, 7, 31))
NOW = datetime(2026, 6, 1, 7, 0, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def api(app: FastAPI, client: TestClient) -> TestClient:
    """The client, with the rundown routes mounted as the integrator mounts them."""
    from broadcast.scheduling.rundown_routes import router

    if not any(getattr(route, "path", "") == "/api/v1/rundowns/villages/{code}" for route in app.routes):
        app.include_router(router, prefix="/api/v1", dependencies=[Depends(reject_unknown_query)])
    return client


@pytest.fixture
def plan(session: Session, settings: Settings, users: Any) -> dict[str, Any]:
    """On the users fixture's city: one campaign for all, a higher one and a quiet-hours one for village 1."""
    villages = list(session.exec(select(Village).order_by(col(Village.id))).all())
    endpoints = list(session.exec(select(Endpoint).order_by(col(Endpoint.id))).all())
    revision = playlist_revision(session)
    first = villages[0].code
    everyone = make_campaign(
        session,
        revision=revision,
        selector={"all": True},
        times=["08:00", "12:00"],
        season=SEASON,
        name="防火",
    )
    urgent = make_campaign(
        session,
        revision=revision,
        selector={"villages": [first]},
        times=["08:00"],
        season=SEASON,
        priority=8,
        name="防汛",
    )
    make_campaign(
        session,
        revision=revision,
        selector={"villages": [first]},
        times=["22:30"],
        season=SEASON,
        windows=("06:00-23:30",),
        name="夜间",
    )
    make_campaign(
        session,
        revision=revision,
        selector={"endpoints": [endpoints[0].code]},
        times=["15:00"],
        season=SEASON,
        name="单点",
    )
    session.commit()
    materialize(session, settings=settings, now=NOW)
    session.commit()
    return {"villages": villages, "endpoints": endpoints, "everyone": everyone, "urgent": urgent}


def test_endpoint_day_lists_plays_moves_and_drops(
    api: TestClient, headers: Any, plan: dict[str, Any]
) -> None:
    code = plan["endpoints"][0].code
    response = api.get(
        f"/api/v1/rundowns/endpoints/{code}", params={"date": "2026-06-01"}, headers=headers[Role.admin]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["source"], body["kind"], body["endpoints"]) == ("materialized", "endpoint", 1)
    summary = [(line["start"], line["campaign"]["name"], line["plays"]) for line in body["lines"]]
    assert summary == [
        ("08:00", "防汛", True),
        ("08:01", "防火", True),
        ("12:00", "防火", True),
        ("15:00", "单点", True),
        ("22:30", "夜间", False),
    ]
    moved = body["lines"][1]
    assert moved["moved"] is True
    assert moved["bumped_by"]["name"] == "防汛"
    assert "顺延" in moved["text"]
    assert moved["rule"].startswith("每天 08:00、12:00")
    assert moved["revision"] == 1
    dropped = body["lines"][-1]
    assert (dropped["reason"], dropped["reason_text"]) == ("quiet_hours", "静默时段")
    assert "静默时段" in dropped["text"]


def test_village_day_shows_shared_lines_once_and_lists_differences(
    api: TestClient, headers: Any, plan: dict[str, Any]
) -> None:
    code = plan["villages"][0].code
    response = api.get(
        f"/api/v1/rundowns/villages/{code}", params={"date": "2026-06-02"}, headers=headers[Role.admin]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["endpoints"] == 3
    lines = {(line["start"], line["campaign"]["name"]): line for line in body["lines"]}
    assert lines["08:00", "防汛"]["endpoints"] == 3
    assert lines["08:00", "防汛"]["endpoint_codes"] is None
    assert lines["15:00", "单点"]["endpoint_codes"] == [plan["endpoints"][0].code]


def test_day_beyond_the_horizon_is_a_forecast_and_writes_nothing(
    api: TestClient, session: Session, headers: Any, plan: dict[str, Any]
) -> None:
    before = session.exec(select(func.count()).select_from(RundownSlot)).one()
    code = plan["villages"][1].code
    response = api.get(
        f"/api/v1/rundowns/villages/{code}", params={"date": "2026-06-20"}, headers=headers[Role.duty_officer]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "forecast"
    assert "预测" in body["source_text"]
    assert [(line["start"], line["campaign"]["name"], line["endpoints"]) for line in body["lines"]] == [
        ("08:00", "防火", 3),
        ("12:00", "防火", 3),
    ]
    session.expire_all()
    assert session.exec(select(func.count()).select_from(RundownSlot)).one() == before


def test_village_admin_sees_only_her_villages(api: TestClient, headers: Any, plan: dict[str, Any]) -> None:
    own, other = plan["villages"][0].code, plan["villages"][1].code
    admin = headers[Role.village_admin]
    assert (
        api.get(f"/api/v1/rundowns/villages/{own}", params={"date": "2026-06-01"}, headers=admin).status_code
        == 200
    )
    denied = api.get(f"/api/v1/rundowns/villages/{other}", params={"date": "2026-06-01"}, headers=admin)
    assert denied.status_code == 403
    outside = plan["endpoints"][3].code
    assert api.get(f"/api/v1/rundowns/endpoints/{outside}", headers=admin).status_code == 403
    assert (
        api.get(f"/api/v1/rundowns/endpoints/{plan['endpoints'][0].code}", headers=admin).status_code == 200
    )


def test_bad_requests(api: TestClient, headers: Any, plan: dict[str, Any]) -> None:
    admin = headers[Role.admin]
    code = plan["endpoints"][0].code
    assert api.get("/api/v1/rundowns/endpoints/NOPE", headers=admin).status_code == 404
    assert (
        api.get(
            f"/api/v1/rundowns/endpoints/{code}", params={"date": "2026-13-01"}, headers=admin
        ).status_code
        == 422
    )
    assert (
        api.get(f"/api/v1/rundowns/endpoints/{code}", params={"day": "2026-06-01"}, headers=admin).status_code
        == 422
    )
    assert api.get(f"/api/v1/rundowns/endpoints/{code}").status_code == 401
