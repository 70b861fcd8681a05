"""Quiet hours: the city default, village overrides through the API (admins only), and no campaign in them."""

from __future__ import annotations

from datetime import date, time

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from broadcast.auth.audit import Actor
from broadcast.auth.models import Role, User
from broadcast.config import Settings
from broadcast.errors import Invalid
from broadcast.regions.models import Endpoint, Village
from broadcast.scheduling.classes import plan_classes
from broadcast.scheduling.compiler import DropReason, QuietHours, compile_rundowns, local_days
from broadcast.scheduling.quiet import city_quiet_hours, endpoint_quiet_hours, quiet_hours_for
from broadcast.scheduling.refresh import pending_refresh
from broadcast.scheduling.schemas import CampaignCreate
from broadcast.scheduling.service import campaign_spec, create_campaign
from tests.scheduling.campaign_builders import (
    audit_actions,
    campaign_body,
    playlist_revision,
)


def _villages(session: Session) -> list[Village]:
    return list(session.exec(select(Village).order_by(col(Village.code))).all())


def test_overrides_through_the_api(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    first, second = _villages(session)[:2]
    admin = headers[Role.admin]
    assert client.get("/api/v1/quiet-hours", headers=headers[Role.village_admin]).json() == {
        "city": "22:00-06:00",
        "villages": [],
    }
    put = client.put(
        f"/api/v1/villages/{first.code}/quiet-hours", json={"start": "21:00", "end": "06:30"}, headers=admin
    )
    assert put.status_code == 200, put.text
    assert put.json()["village_code"] == first.code
    assert put.json()["start"] == "21:00"
    client.put(
        f"/api/v1/villages/{second.code}/quiet-hours", json={"start": "23:00", "end": "05:00"}, headers=admin
    )
    client.put(
        f"/api/v1/villages/{first.code}/quiet-hours", json={"start": "20:30", "end": "06:30"}, headers=admin
    )
    listed = client.get("/api/v1/quiet-hours", headers=headers[Role.propagandist]).json()["villages"]
    assert [(v["village_code"], v["start"], v["end"]) for v in listed] == [
        (first.code, "20:30", "06:30"),
        (second.code, "23:00", "05:00"),
    ]
    session.expire_all()
    assert pending_refresh(session) is not None
    assert client.delete(f"/api/v1/villages/{second.code}/quiet-hours", headers=admin).status_code == 204
    again = client.delete(f"/api/v1/villages/{second.code}/quiet-hours", headers=admin)
    assert again.status_code == 404
    assert "没有单独设置静默时段" in again.json()["error"]["message"]
    assert audit_actions(session, "village") == [
        "quiet_hours.set",
        "quiet_hours.set",
        "quiet_hours.set",
        "quiet_hours.clear",
    ]


BAD: list[tuple[dict[str, object], str]] = [
    ({"start": "25:00", "end": "06:00"}, "start"),
    ({"start": "22:00", "end": "6:00"}, "end"),
    ({"start": "22:00", "end": "22:00"}, "不能相同"),
    ({"start": "22:00"}, "end"),
    ({"start": "22:00", "end": "06:00", "days": 3}, "days"),
]


def test_bad_quiet_hours_are_refused(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    url = f"/api/v1/villages/{_villages(session)[0].code}/quiet-hours"
    for body, text in BAD:
        response = client.put(url, json=body, headers=headers[Role.admin])
        assert response.status_code == 422, body
        assert text in response.json()["error"]["message"], body
    assert audit_actions(session, "village") == []
    assert client.get("/api/v1/quiet-hours", headers=headers[Role.admin]).json()["villages"] == []


def test_only_admins_change_quiet_hours(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    url = f"/api/v1/villages/{_villages(session)[0].code}/quiet-hours"
    body = {"start": "21:00", "end": "06:00"}
    for role in (Role.propagandist, Role.duty_officer, Role.village_admin):
        assert client.put(url, json=body, headers=headers[role]).status_code == 403
        assert client.delete(url, headers=headers[role]).status_code == 403
    missing = client.put("/api/v1/villages/999/quiet-hours", json=body, headers=headers[Role.admin])
    assert missing.status_code == 404
    assert client.get("/api/v1/quiet-hours").status_code == 401


def test_quiet_hours_for_every_village_and_endpoint(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]], settings: Settings
) -> None:
    villages = _villages(session)
    client.put(
        f"/api/v1/villages/{villages[0].code}/quiet-hours",
        json={"start": "21:00", "end": "06:00"},
        headers=headers[Role.admin],
    )
    session.expire_all()
    by_village = quiet_hours_for(session, settings=settings)
    assert by_village[villages[0].id or 0] == QuietHours(time(21), time(6))
    assert {by_village[v.id or 0] for v in villages[1:]} == {QuietHours(time(22), time(6))}
    endpoints = session.exec(select(Endpoint).where(Endpoint.village_id == villages[0].id)).all()
    quiet = endpoint_quiet_hours(session, settings=settings, endpoint_ids=[e.id or 0 for e in endpoints])
    assert set(quiet.values()) == {QuietHours(time(21), time(6))}
    with pytest.raises(Invalid, match="BROADCAST_QUIET_HOURS"):
        city_quiet_hours(settings.model_copy(update={"quiet_hours": "late"}))


def test_no_campaign_plays_in_a_village_quiet_hours(
    client: TestClient,
    session: Session,
    headers: dict[Role, dict[str, str]],
    settings: Settings,
    users: dict[Role, User],
) -> None:
    quiet_village, other_village = _villages(session)[:2]
    client.put(
        f"/api/v1/villages/{quiet_village.code}/quiet-hours",
        json={"start": "21:00", "end": "06:00"},
        headers=headers[Role.admin],
    )
    session.expire_all()
    revision = playlist_revision(session, duration_ms=120_000)
    body = campaign_body(
        revision.playlist_id,
        selector={"villages": [quiet_village.code, other_village.code]},
        recurrence={"preset": "daily", "times": ["21:30"]},
        windows=["21:00-22:00"],
    )
    author = users[Role.propagandist]
    campaign = create_campaign(
        session, data=CampaignCreate.model_validate(body), actor=Actor(author.id, author.username)
    )
    endpoints = session.exec(
        select(Endpoint.id, Endpoint.village_id).where(
            col(Endpoint.village_id).in_([quiet_village.id, other_village.id])
        )
    ).all()
    quiet = endpoint_quiet_hours(session, settings=settings, endpoint_ids=[eid or 0 for eid, _ in endpoints])
    plan = plan_classes({eid or 0: frozenset({campaign.id or 0}) for eid, _ in endpoints}, quiet)
    spec = campaign_spec(campaign, duration_ms=120_000, classes=plan.targets[campaign.id or 0])
    start, end = local_days(date(2030, 10, 1), 1)
    rundowns = compile_rundowns([spec], plan.quiet, window_start=start, window_end=end)
    village_of = dict(endpoints)
    for rundown in rundowns.classes:
        villages = {village_of[eid] for eid in plan.members[rundown.class_id]}
        if villages == {quiet_village.id}:
            assert rundown.slots == ()
            assert [drop.reason for drop in rundown.drops] == [DropReason.QUIET_HOURS]
        else:
            assert villages == {other_village.id}
            assert len(rundown.slots) == 1
