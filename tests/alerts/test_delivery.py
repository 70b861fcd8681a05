"""Delivery: what a reconnecting device gets, events and acks moving the board, expiry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from broadcast.alerts.delivery import record_acks
from broadcast.alerts.models import Alert, AlertDelivery, AlertStatus
from broadcast.alerts.service import expire_alerts
from broadcast.clock import utc_now
from broadcast.dispatch.models import SigningKey
from broadcast.dispatch.signing import verify
from broadcast.regions.models import Endpoint, EndpointStatus
from tests import builders
from tests.alerts.conftest import sent
from tests.dispatch.conftest import Device


def _event(kind: str, alert: dict[str, Any], n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"ev-{alert['id']}-{kind}-{n}",
        "type": kind,
        "at": utc_now().isoformat(),
        "alert_id": alert["id"],
        "alert_revision": alert["revision"],
        "program_sha256": alert["program_sha256"],
        **extra,
    }


def _state(session: Session, alert_id: int, endpoint_id: int) -> AlertDelivery:
    session.expire_all()
    return session.exec(
        select(AlertDelivery).where(
            AlertDelivery.alert_id == alert_id, AlertDelivery.endpoint_id == endpoint_id
        )
    ).one()


def test_a_device_that_reconnects_gets_the_valid_alerts_signed_and_counts_as_delivered(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]], devices: list[Device]
) -> None:
    alert = sent(client, auth["duty"])
    device = devices[0]
    response = client.get("/device/v1/alerts", headers=device.headers)
    assert response.status_code == 200
    envelopes = response.json()["envelopes"]
    assert len(envelopes) == 1
    payload = verify(envelopes[0], session.exec(select(SigningKey)).all(), now=utc_now())
    assert (payload["type"], payload["alert_id"], payload["revision"]) == ("alert", alert["id"], 1)
    audio = client.get(payload["program"]["url"], headers=device.headers)
    assert audio.status_code == 200
    delivery = _state(session, alert["id"], device.endpoint.id or 0)
    assert delivery.state == "delivered"
    assert delivery.delivered_at is not None
    assert (
        client.get("/device/v1/alerts", headers=device.headers).json()["envelopes"][0]["payload"]["seq"]
        > payload["seq"]
    )


def _welcome_alerts(client: TestClient, device: Device) -> int:
    with client.websocket_connect("/device/v1/ws", headers=device.headers) as ws:
        welcome = ws.receive_json()
    assert welcome["type"] == "welcome"
    return int(welcome["alerts"])


def test_the_welcome_counts_what_the_alerts_list_holds_so_devices_fetch_only_then(
    client: TestClient,
    session: Session,
    auth: dict[str, dict[str, str]],
    devices: list[Device],
    city: builders.City,
) -> None:
    mine, other = devices[0], devices[-1]  # the last device is in another village
    assert _welcome_alerts(client, mine) == 0
    alert = sent(client, auth["duty"], selector={"villages": [city.villages[0].code]})
    for device, expected in ((mine, 1), (other, 0)):
        listed = client.get("/device/v1/alerts", headers=device.headers).json()["envelopes"]
        assert len(listed) == _welcome_alerts(client, device) == expected
    client.post(f"/api/v1/alerts/{alert['id']}/cancel", json={"reason": "解除"}, headers=auth["duty"])
    assert _welcome_alerts(client, mine) == 1  # the cancel: a speaker may still be playing it
    session.execute(update(Alert).values(valid_until=utc_now() - timedelta(seconds=1)))
    session.commit()
    assert _welcome_alerts(client, mine) == 0


def test_after_a_cancel_the_list_holds_the_cancel_and_nothing_after_expiry(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]], devices: list[Device]
) -> None:
    alert = sent(client, auth["duty"])
    client.post(f"/api/v1/alerts/{alert['id']}/cancel", json={"reason": "解除"}, headers=auth["duty"])
    listed = client.get("/device/v1/alerts", headers=devices[0].headers).json()["envelopes"]
    assert [e["payload"]["type"] for e in listed] == ["cancel"]
    session.execute(update(Alert).values(valid_until=utc_now() - timedelta(seconds=1)))
    session.commit()
    assert client.get("/device/v1/alerts", headers=devices[0].headers).json()["envelopes"] == []


def test_play_events_move_the_board_forward_only_and_foreign_or_unknown_alerts_are_rejected(
    client: TestClient,
    session: Session,
    auth: dict[str, dict[str, str]],
    devices: list[Device],
    city: builders.City,
) -> None:
    alert = sent(client, auth["duty"], selector={"villages": [city.villages[0].code]})
    mine, other = devices[0], devices[-1]  # the last device is in another village
    endpoint_id = mine.endpoint.id or 0
    batch = [_event("started", alert, 1), _event("completed", alert, 2)]
    answer = client.post("/device/v1/events", json={"events": batch}, headers=mine.headers).json()
    assert answer["accepted"] == 2
    delivery = _state(session, alert["id"], endpoint_id)
    assert delivery.state == "completed"
    assert delivery.started_at is not None
    assert delivery.delivered_at is not None
    record_acks(session, {(alert["id"], 1, endpoint_id): utc_now()})
    session.commit()
    assert _state(session, alert["id"], endpoint_id).state == "completed"  # an ack cannot move it back
    foreign = client.post(
        "/device/v1/events", json={"events": [_event("started", alert, 3)]}, headers=other.headers
    )
    assert foreign.json()["rejected"][0]["code"] == "foreign_alert"
    unknown = _event("started", {**alert, "id": 99999}, 4)
    both = _event("started", alert, 5, slot_id=1)
    rejected = client.post("/device/v1/events", json={"events": [unknown, both]}, headers=mine.headers).json()
    assert [r["code"] for r in rejected["rejected"]] == ["unknown_alert", "invalid"]


def test_the_board_counts_by_village_and_lists_the_unreached(
    client: TestClient,
    session: Session,
    auth: dict[str, dict[str, str]],
    devices: list[Device],
    city: builders.City,
) -> None:
    offline = city.endpoints[-1]
    session.execute(update(Endpoint).where(Endpoint.id == offline.id).values(status=EndpointStatus.offline))
    session.commit()
    alert = sent(client, auth["duty"])
    client.get("/device/v1/alerts", headers=devices[0].headers)
    board = client.get(f"/api/v1/alerts/{alert['id']}/board", headers=auth["duty"]).json()
    totals = board["totals"]
    assert (totals["total"], totals["delivered"], totals["offline"], totals["sent"]) == (12, 1, 1, 10)
    assert len(board["villages"]) == 4
    assert board["first_delivered_s"] is not None
    unreached = client.get(
        f"/api/v1/alerts/{alert['id']}/deliveries",
        params={"state": "unreached", "limit": 50},
        headers=auth["duty"],
    ).json()
    assert unreached["total"] == 11
    shown = {row["endpoint_code"]: row["shown_state"] for row in unreached["items"]}
    assert shown[offline.code] == "离线"
    assert (
        client.get(
            f"/api/v1/alerts/{alert['id']}/deliveries", params={"state": "nonsense"}, headers=auth["duty"]
        ).status_code
        == 422
    )


def test_record_acks_ignores_an_older_revision(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]], devices: list[Device]
) -> None:
    alert = sent(client, auth["duty"])
    client.post(f"/api/v1/alerts/{alert['id']}/update", json={"repeat": 3}, headers=auth["duty"])
    endpoint_id = devices[0].endpoint.id or 0
    record_acks(session, {(alert["id"], 1, endpoint_id): utc_now()})
    session.commit()
    assert _state(session, alert["id"], endpoint_id).state == "sent"
    record_acks(session, {(alert["id"], 2, endpoint_id): utc_now()})
    session.commit()
    assert _state(session, alert["id"], endpoint_id).state == "delivered"


def test_alerts_past_their_validity_expire(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]]
) -> None:
    alert = sent(client, auth["duty"])
    assert expire_alerts(session, now=utc_now()) == []
    assert expire_alerts(session, now=utc_now() + timedelta(hours=3)) == [alert["id"]]
    session.commit()
    session.expire_all()
    assert session.get_one(Alert, alert["id"]).status == AlertStatus.expired
    audio = client.get(f"/device/v1/audio/{alert['program_sha256']}")
    assert audio.status_code == 401
