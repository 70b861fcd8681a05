"""The alert desk's API: drafting, the confirmation, approval, break glass, update, cancel, bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from broadcast.alerts.models import AlertDelivery
from broadcast.auth.models import AuditEntry
from broadcast.clock import utc_now
from broadcast.dispatch.models import SigningKey
from broadcast.dispatch.signing import verify
from tests import builders
from tests.alerts.conftest import alert_body, draft, outbox, sent
from tests.playlists.conftest import make_clip


def _verified(session: Session, message: dict[str, Any]) -> dict[str, Any]:
    return verify(message["envelope"], session.exec(select(SigningKey)).all(), now=utc_now())


def _audit_actions(session: Session, alert_id: int) -> list[str]:
    session.expire_all()
    query = select(AuditEntry.action).where(
        AuditEntry.entity_type == "alert", AuditEntry.entity_id == str(alert_id)
    )
    return list(session.exec(query.order_by(col(AuditEntry.id))).all())


def test_a_draft_shows_its_reach_and_its_audio_before_anything_is_sent(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]]
) -> None:
    made = draft(client, auth["duty"])
    assert made["status"] == "draft"
    assert made["preview"]["total"] == 12
    assert len(made["preview"]["villages"]) == 4
    assert made["program_duration_ms"] > 1000
    audio = client.get(made["program_url"], headers=auth["duty"])
    assert audio.status_code == 200
    assert audio.content[:2] == b"\xff\xfb"
    assert made["all_clear_text"].startswith("现在解除山洪橙色预警")
    assert outbox(session) == []


def test_a_live_level_three_alert_goes_out_once_with_a_delivery_row_per_endpoint(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]]
) -> None:
    alert = sent(client, auth["duty"])
    assert alert["status"] == "active"
    assert alert["reach"] == 12
    assert alert["confirmed_by"]
    messages = outbox(session)
    assert len(messages) == 1
    assert len(messages[0]["targets"]) == 12
    payload = _verified(session, messages[0])
    assert payload["type"] == "alert"
    assert payload["alert_id"] == alert["id"]
    assert payload["drill"] is False
    assert payload["program"]["sha256"] == alert["program_sha256"]
    rows = session.exec(select(AlertDelivery).where(AlertDelivery.alert_id == alert["id"])).all()
    assert len(rows) == 12
    assert {row.state for row in rows} == {"sent"}
    again = client.post(
        f"/api/v1/alerts/{alert['id']}/send", json={"reach": 12, "drill": False}, headers=auth["duty"]
    )
    assert again.status_code == 200
    assert len(outbox(session)) == 1
    assert _audit_actions(session, alert["id"]) == ["alert.draft", "alert.send"]


def test_the_same_request_twice_is_one_alert_and_a_reused_key_with_other_content_is_refused(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    body = alert_body()
    first = client.post("/api/v1/alerts", json=body, headers=auth["duty"])
    second = client.post("/api/v1/alerts", json=body, headers=auth["duty"])
    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    other = client.post("/api/v1/alerts", json={**body, "text": "另一条消息"}, headers=auth["duty"])
    assert other.status_code == 409
    assert "新的编号" in other.json()["error"]["message"]


def test_a_stale_confirmation_is_refused_with_the_current_figures(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    made = draft(client, auth["duty"])
    wrong = client.post(
        f"/api/v1/alerts/{made['id']}/send", json={"reach": 11, "drill": False}, headers=auth["duty"]
    )
    assert wrong.status_code == 409
    assert wrong.json()["error"]["details"]["reach"] == 12
    drill = client.post(
        f"/api/v1/alerts/{made['id']}/send", json={"reach": 12, "drill": True}, headers=auth["duty"]
    )
    assert drill.status_code == 409
    assert "真实预警" in drill.json()["error"]["message"]


def test_level_one_needs_a_second_person_and_the_author_cannot_approve(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]]
) -> None:
    alert = sent(client, auth["duty"], level=1)
    assert alert["status"] == "awaiting_approval"
    assert alert["needs_approval"]
    assert outbox(session) == []
    own = client.post(f"/api/v1/alerts/{alert['id']}/approve", headers=auth["duty"])
    assert own.status_code == 403
    assert "自己" in own.json()["error"]["message"]
    approved = client.post(f"/api/v1/alerts/{alert['id']}/approve", headers=auth["duty2"])
    assert approved.status_code == 200
    assert approved.json()["status"] == "active"
    assert len(outbox(session)) == 1
    assert _audit_actions(session, alert["id"]) == ["alert.draft", "alert.confirm", "alert.approve"]


def test_an_admin_may_approve_but_a_propagandist_may_not_touch_alerts(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    alert = sent(client, auth["duty"], level=2)
    refused = client.post(f"/api/v1/alerts/{alert['id']}/approve", headers=auth["propagandist"])
    assert refused.status_code == 403
    assert client.get("/api/v1/alerts", headers=auth["village"]).status_code == 403
    ok = client.post(f"/api/v1/alerts/{alert['id']}/approve", headers=auth["admin"])
    assert ok.status_code == 200
    assert ok.json()["approved_by"]


def test_break_glass_sends_alone_with_a_written_reason_in_the_audit_log(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]]
) -> None:
    made = draft(client, auth["duty"], level=1)
    url = f"/api/v1/alerts/{made['id']}/break-glass"
    short = client.post(url, json={"reach": 12, "drill": False, "reason": "急"}, headers=auth["duty"])
    assert short.status_code == 422
    reason = "水库溢洪道漫顶，第二值班员电话无法接通"
    done = client.post(url, json={"reach": 12, "drill": False, "reason": reason}, headers=auth["duty"])
    assert done.status_code == 200
    assert done.json()["status"] == "active"
    assert done.json()["break_glass_reason"] == reason
    assert _audit_actions(session, made["id"]) == ["alert.draft", "alert.break_glass"]
    level3 = draft(client, auth["duty"])
    needless = client.post(
        f"/api/v1/alerts/{level3['id']}/break-glass", json={"reach": 12, "drill": False, "reason": reason},
        headers=auth["duty"],
    )  # fmt: skip
    assert needless.status_code == 422
    assert "无需审批" in needless.json()["error"]["message"]


def test_a_drill_is_marked_in_its_words_its_message_and_its_listing(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]]
) -> None:
    alert = sent(client, auth["duty"], drill=True, title="山洪演练")
    assert alert["spoken"].startswith("现在进行应急演练")
    assert "不是真实预警" in alert["spoken"]
    payload = _verified(session, outbox(session)[0])
    assert payload["drill"] is True
    live = client.get("/api/v1/alerts", params={"drill": "false"}, headers=auth["duty"]).json()
    drills = client.get("/api/v1/alerts", params={"drill": "true"}, headers=auth["duty"]).json()
    assert live["total"] == 0
    assert drills["total"] == 1


def test_update_makes_a_new_revision_for_the_same_endpoints(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]]
) -> None:
    alert = sent(client, auth["duty"])
    response = client.post(
        f"/api/v1/alerts/{alert['id']}/update", json={"text": "水位继续上涨，请勿返回。", "level": 2},
        headers=auth["duty"],
    )  # fmt: skip
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["revision"] == 2
    assert updated["program_sha256"] != alert["program_sha256"]
    payload = _verified(session, outbox(session)[1])
    assert payload["revision"] == 2
    assert payload["level"] == 2
    assert payload["alert_id"] == alert["id"]
    empty = client.post(f"/api/v1/alerts/{alert['id']}/update", json={}, headers=auth["duty"])
    assert empty.status_code == 422


def test_cancel_sends_the_prepared_all_clear_in_one_step_and_only_once(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]]
) -> None:
    alert = sent(client, auth["duty"])
    url = f"/api/v1/alerts/{alert['id']}/cancel"
    done = client.post(url, json={"reason": "水位回落"}, headers=auth["duty2"])
    assert done.status_code == 200
    assert done.json()["status"] == "cancelled"
    payload = _verified(session, outbox(session)[1])
    assert payload["type"] == "cancel"
    assert payload["alert_id"] == alert["id"]
    assert payload["all_clear"]["sha256"]
    again = client.post(url, json={"reason": "水位回落"}, headers=auth["duty"])
    assert again.status_code == 409
    assert _audit_actions(session, alert["id"])[-1] == "alert.cancel"


def test_withdrawing_a_draft_sends_nothing(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]]
) -> None:
    made = draft(client, auth["duty"])
    done = client.post(
        f"/api/v1/alerts/{made['id']}/cancel", json={"reason": "起草有误"}, headers=auth["duty"]
    )
    assert done.json()["status"] == "discarded"
    assert outbox(session) == []


def test_bad_input_gets_a_precise_error_and_nothing_is_half_sent(
    client: TestClient, session: Session, auth: dict[str, dict[str, str]], city: builders.City
) -> None:
    empty_village = builders.make_village(session, town=city.towns[0])
    lost = make_clip(session, title="音频丢失的录音")  # its audio file is not in the store
    session.commit()
    cases = {
        "empty text": alert_body(text=""),
        "5,000 characters": alert_body(text="水" * 5000),
        "expired validity": alert_body(valid_until=(utc_now() - timedelta(minutes=5)).isoformat()),
        "naive validity": alert_body(valid_until="2026-12-01T10:00:00"),
        "level 5": alert_body(level=5),
        "unknown category": alert_body(category="meteor"),
        "text and clip": alert_body(clip_id=1),
        "no drill flag": {k: v for k, v in alert_body().items() if k != "drill"},
        "reaches nothing": alert_body(selector={"villages": [empty_village.code]}),
        "unknown clip": alert_body(text=None, clip_id=999_999),
        "clip without its audio": alert_body(text=None, clip_id=lost.id),
    }
    messages = {}
    for name, body in cases.items():
        response = client.post("/api/v1/alerts", json=body, headers=auth["duty"])
        assert response.status_code == 422, (name, response.text)
        messages[name] = response.json()["error"]["message"]
        assert messages[name], name
    assert messages["clip without its audio"].startswith(
        "录音素材「音频丢失的录音」的音频文件在音频存储中找不到"
    )
    assert (
        client.post("/api/v1/alerts/424242/cancel", json={"reason": "x"}, headers=auth["duty"]).status_code
        == 404
    )
    assert client.get("/api/v1/alerts?status=unknown", headers=auth["duty"]).status_code == 422
    assert client.get("/api/v1/alerts", headers=auth["duty"]).json()["total"] == 0
    assert outbox(session) == []
