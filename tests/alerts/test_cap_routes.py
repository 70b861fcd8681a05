"""CAP 1.2 on the desk: the hydrology bureau's flood messages imported into the test city, the
refusals that must create nothing, and every export checked against the OASIS schema."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, update
from sqlmodel import Session, select

from broadcast.alerts import cap
from broadcast.alerts.models import Alert, CapMessageRecord
from broadcast.auth.models import AuditEntry
from broadcast.clock import utc_now
from broadcast.dispatch.models import OutboxMessage
from broadcast.regions.models import Endpoint
from tests import builders
from tests.alerts.conftest import draft, outbox, sent

SAMPLES = Path(__file__).parent / "cap_samples"
CAP_SENDER = "cloud-broadcast.local"  # settings.cap_sender's default
UPSTREAM = "swj.shifan@hydrology.example.cn"
UNKNOWN_TOWN = "430181102"  # a town of the bureau's county that is not in the test city
# The samples' clock: their cancel (05:30) is "now" in the tests, the alert was sent 3 h 17 min ago.
_SAMPLE_NOW = datetime.fromisoformat("2024-07-02T05:30:00+08:00")
_SAMPLE_TIME = re.compile(r"2024-07-02T\d\d:\d\d:00\+08:00")


def _shift(text: str, now: datetime) -> str:
    return _SAMPLE_TIME.sub(lambda m: cap.cap_time(now + (datetime.fromisoformat(m[0]) - _SAMPLE_NOW)), text)


def sample(name: str, city: builders.City, now: datetime | None = None) -> str:
    """A sample with its times moved to today and its codes moved into the test city: the
    village 430181201203 becomes the city's third village, the town 430181201 its first town."""
    text = (SAMPLES / name).read_text(encoding="utf-8")
    text = text.replace("430181201203", city.villages[2].code).replace("430181201", city.towns[0].code)
    return _shift(text, now or utc_now())


def post_cap(
    client: TestClient, headers: dict[str, str], body: str | bytes, content_type: str = "application/cap+xml"
) -> Any:
    data = body.encode() if isinstance(body, str) else body
    return client.post("/api/v1/alerts/cap", content=data, headers={**headers, "Content-Type": content_type})


def count(session: Session, table: Any) -> int:
    session.expire_all()
    return int(session.exec(select(func.count()).select_from(table)).one())


def confirm(client: TestClient, auth: dict[str, dict[str, str]], alert: dict[str, Any]) -> dict[str, Any]:
    """The desk's confirmation, with the second person's approval the level needs."""
    preview = client.get(f"/api/v1/alerts/{alert['id']}/preview", headers=auth["duty"]).json()
    body = {"reach": preview["total"], "drill": alert["drill"]}
    done = client.post(f"/api/v1/alerts/{alert['id']}/send", json=body, headers=auth["duty"])
    assert done.status_code == 200, done.text
    if done.json()["status"] == "awaiting_approval":
        done = client.post(f"/api/v1/alerts/{alert['id']}/approve", headers=auth["duty2"])
        assert done.status_code == 200, done.text
    assert done.json()["status"] == "active"
    result: dict[str, Any] = done.json()
    return result


def exported(client: TestClient, headers: dict[str, str], alert_id: int) -> cap.CapMessage:
    """The export, schema-checked; a Draft is read as Actual (parse_cap refuses Draft on purpose)."""
    response = client.get(f"/api/v1/alerts/{alert_id}/cap", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/cap+xml; charset=utf-8"
    cap.validate_cap(response.content)
    return cap.parse_cap(response.content.replace(b"<status>Draft</status>", b"<status>Actual</status>"))


Samples = Callable[[str], str]


@pytest.fixture
def samples(city: builders.City) -> Samples:
    """The samples on one clock for the whole test, so a repeat is byte for byte the same."""
    now = utc_now()
    return lambda name: sample(name, city, now)


@pytest.fixture
def imported(client: TestClient, samples: Samples, auth: dict[str, dict[str, str]]) -> dict[str, Any]:
    response = post_cap(client, auth["duty"], samples("flood_alert.xml"))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# --- import ------------------------------------------------------------------------------------


def test_the_bureaus_flood_alert_becomes_a_draft_for_the_desk_never_a_broadcast(
    client: TestClient,
    session: Session,
    city: builders.City,
    auth: dict[str, dict[str, str]],
    imported: dict[str, Any],
    samples: Samples,
) -> None:
    assert imported["action"] == "draft"
    alert = imported["alert"]
    assert alert["status"] == "draft"
    assert (alert["level"], alert["category"], alert["drill"]) == (2, "flood", False)
    assert alert["needs_approval"] is True
    assert alert["source"] == "cap"
    assert alert["cap_identifier"] == "SFSWJ-2024-0702-001"
    assert alert["title"] == "示范市水文局发布大溪河山洪灾害橙色预警"
    assert alert["text"].startswith("受持续强降雨影响")
    assert "可能发生山洪。请沿河低洼地带群众立即向高处转移" in alert["text"]
    assert alert["selector"]["towns"] == [city.towns[0].code]
    assert alert["selector"]["villages"] == [city.villages[2].code]
    assert imported["preview"]["total"] == 9  # the first town's six speakers and one village's three
    assert imported["unmatched_codes"] == [UNKNOWN_TOWN]
    assert UNKNOWN_TOWN in imported["notes"][0]
    row = session.get_one(Alert, alert["id"])
    assert row.cap_sender == UPSTREAM
    assert row.cap_polygons[0][0] == [28.32, 113.9]
    expires = re.search(r"<expires>(.*)</expires>", samples("flood_alert.xml"))
    assert expires is not None
    assert row.valid_until == datetime.fromisoformat(expires[1])
    assert outbox(session) == []
    again = post_cap(client, auth["duty2"], samples("flood_alert.xml"))
    assert again.status_code == 200
    assert again.json()["alert"]["id"] == alert["id"]
    assert again.json()["unmatched_codes"] == [UNKNOWN_TOWN]
    assert "本次未重复处理" in again.json()["notes"][-1]
    assert (count(session, Alert), count(session, CapMessageRecord)) == (1, 1)


def test_update_and_cancel_act_on_the_sent_alert(
    client: TestClient,
    session: Session,
    city: builders.City,
    auth: dict[str, dict[str, str]],
    imported: dict[str, Any],
    samples: Samples,
) -> None:
    confirm(client, auth, imported["alert"])
    # The bureau widens the area to a town we have: the update still goes to the original speakers.
    update_xml = samples("flood_update.xml").replace("430181114", city.towns[1].code)
    updated = post_cap(client, auth["duty"], update_xml)
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["action"] == "update"
    assert body["alert"]["id"] == imported["alert"]["id"]
    assert body["alert"]["revision"] == 2
    assert body["alert"]["title"] == "示范市水文局更新大溪河山洪灾害橙色预警"
    assert body["alert"]["text"].startswith("大溪河水位持续上涨")
    assert "多出 3 个终端" in body["notes"][0]
    messages = outbox(session)
    assert [m["alert"]["type"] for m in messages] == ["alert", "alert"]
    assert len(messages[1]["targets"]) == 9
    same = post_cap(client, auth["duty"], update_xml)
    assert same.status_code == 200
    assert same.json()["action"] == "update"
    assert same.json()["alert"]["revision"] == 2
    assert same.json()["notes"][0] == body["notes"][0]
    assert "本次未重复处理" in same.json()["notes"][-1]
    # The same content under a new identifier (an agency resending): recorded, no revision.
    copy = update_xml.replace("SFSWJ-2024-0702-002</identifier>", "SFSWJ-2024-0702-004</identifier>")
    resent = post_cap(client, auth["duty"], copy)
    assert (resent.status_code, resent.json()["alert"]["revision"]) == (200, 2)
    assert "未生成新版本" in resent.json()["notes"][-1]
    assert len(outbox(session)) == 2

    cancelled = post_cap(client, auth["duty"], samples("flood_cancel.xml"))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["action"] == "cancel"
    assert cancelled.json()["alert"]["status"] == "cancelled"
    assert cancelled.json()["alert"]["cancel_reason"] == "洪峰已过，解除预警"
    last = outbox(session)[-1]
    assert last["alert"]["type"] == "cancel"
    again = post_cap(client, auth["duty2"], samples("flood_cancel.xml"))
    assert again.status_code == 200, again.text
    assert (again.json()["action"], again.json()["alert"]["status"]) == ("cancel", "cancelled")
    assert len(outbox(session)) == 3
    assert (count(session, Alert), count(session, CapMessageRecord)) == (1, 4)


def test_an_update_cannot_change_a_draft_but_after_discarding_it_becomes_the_new_draft(
    client: TestClient,
    session: Session,
    city: builders.City,
    auth: dict[str, dict[str, str]],
    imported: dict[str, Any],
    samples: Samples,
) -> None:
    update_xml = samples("flood_update.xml")
    refused = post_cap(client, auth["duty"], update_xml)
    assert refused.status_code == 409
    assert "请先作废该草稿" in refused.json()["error"]["message"]
    discard = client.post(
        f"/api/v1/alerts/{imported['alert']['id']}/cancel",
        json={"reason": "上游已更新"},
        headers=auth["duty"],
    )
    assert discard.json()["status"] == "discarded"
    fresh = post_cap(client, auth["duty"], update_xml)
    assert fresh.status_code == 201, fresh.text
    assert fresh.json()["action"] == "draft"
    assert fresh.json()["alert"]["cap_identifier"] == "SFSWJ-2024-0702-002"
    assert fresh.json()["alert"]["id"] != imported["alert"]["id"]
    assert post_cap(client, auth["duty"], update_xml).json()["alert"]["id"] == fresh.json()["alert"]["id"]
    assert count(session, Alert) == 2


def test_a_cancel_of_a_draft_discards_it(
    client: TestClient,
    city: builders.City,
    auth: dict[str, dict[str, str]],
    imported: dict[str, Any],
    samples: Samples,
) -> None:
    done = post_cap(client, auth["duty"], samples("flood_cancel.xml"))
    assert done.status_code == 200, done.text
    assert done.json()["alert"]["status"] == "discarded"


def _move_first_village(session: Session, city: builders.City) -> None:
    """The first village's three speakers stand 33 km north of the others."""
    ids = [e.id for e in city.endpoints[:3]]
    session.exec(update(Endpoint).where(Endpoint.id.in_(ids)).values(latitude=28.5))  # type: ignore[union-attr,call-overload]
    session.commit()


def test_a_polygon_alone_reaches_the_speakers_inside_it(
    client: TestClient,
    session: Session,
    city: builders.City,
    auth: dict[str, dict[str, str]],
    samples: Samples,
) -> None:
    _move_first_village(session, city)
    xml = samples("flood_alert.xml")
    xml = re.sub(
        r"<polygon>.*</polygon>",
        "<polygon>28.1,112.8 28.3,112.8 28.3,113.0 28.1,113.0 28.1,112.8</polygon>",
        xml,
    )
    xml = re.sub(r"\s*<geocode>.*?</geocode>", "", xml, flags=re.DOTALL)
    response = post_cap(client, auth["duty"], xml)
    assert response.status_code == 201, response.text
    selector = response.json()["alert"]["selector"]
    assert set(selector) >= {"endpoints"}
    assert sorted(selector["endpoints"]) == sorted(e.code for e in city.endpoints[3:])
    assert response.json()["preview"]["total"] == 9
    assert response.json()["unmatched_codes"] == []


def test_an_exercise_with_a_circle_is_a_drill_draft(
    client: TestClient, session: Session, city: builders.City, auth: dict[str, dict[str, str]]
) -> None:
    _move_first_village(session, city)
    xml = (SAMPLES / "landslide_exercise.xml").read_text(encoding="utf-8")
    xml = xml.replace("28.4012,114.0125 0.5", "28.2,112.9 0.5")
    xml = xml.replace("2024-05-12T09:30:00+08:00", cap.cap_time(utc_now()))
    xml = xml.replace("2024-05-12T11:00:00+08:00", cap.cap_time(utc_now() + timedelta(hours=1)))
    response = post_cap(client, auth["duty"], xml, "text/xml; charset=utf-8")
    assert response.status_code == 201, response.text
    alert = response.json()["alert"]
    assert (alert["drill"], alert["level"], alert["category"]) == (True, 3, "geological")
    assert alert["spoken"].startswith("现在进行应急演练")
    assert response.json()["preview"]["total"] == 9
    assert response.json()["unmatched_codes"] == ["430181210205"]


def _namespace_11(xml: str) -> str:
    return xml.replace("urn:oasis:names:tc:emergency:cap:1.2", "urn:oasis:names:tc:emergency:cap:1.1")


def _no_scope(xml: str) -> str:
    return xml.replace("<scope>Public</scope>", "")


def _test_status(xml: str) -> str:
    return xml.replace("<status>Actual</status>", "<status>Test</status>")


def _unknown_severity(xml: str) -> str:
    return xml.replace("<severity>Severe</severity>", "<severity>Unknown</severity>")


def _expired(xml: str) -> str:
    return re.sub(
        r"<expires>.*</expires>", f"<expires>{cap.cap_time(utc_now() - timedelta(hours=1))}</expires>", xml
    )


def _elsewhere(xml: str) -> str:
    """Codes of another county only, and the sample's polygon (no speaker of ours inside)."""
    return re.sub(r"<value>\d+</value>", "<value>431102001</value>", xml)


def _too_long(xml: str) -> str:
    return re.sub(r"<description>.*</description>", f"<description>{'水' * 1001}</description>", xml)


@pytest.mark.parametrize(
    ("change", "code", "expected"),
    [
        (_namespace_11, 422, "只接受 CAP 1.2"),
        (_no_scope, 422, "缺少必填元素 <scope>（发布范围）"),
        (_test_status, 422, "<status>（状态）为 Test"),
        (_unknown_severity, 422, "无法自动定级"),
        (_expired, 422, "已过：过期的预警不再播发"),
        (_elsewhere, 422, "行政区划代码 431102001 不属于本市"),
        (_too_long, 422, "超过 1000 字上限"),
    ],
)
def test_bad_messages_are_refused_precisely_and_create_nothing(
    client: TestClient,
    session: Session,
    city: builders.City,
    auth: dict[str, dict[str, str]],
    change: Any,
    code: int,
    expected: str,
    samples: Samples,
) -> None:
    response = post_cap(client, auth["duty"], change(samples("flood_alert.xml")))
    assert response.status_code == code, response.text
    assert expected in response.json()["error"]["message"]
    counts = [count(session, table) for table in (Alert, CapMessageRecord, AuditEntry, OutboxMessage)]
    assert counts == [0, 0, 0, 0]


def test_an_update_or_cancel_of_an_unknown_alert_is_404_naming_the_reference(
    client: TestClient, session: Session, city: builders.City, auth: dict[str, dict[str, str]]
) -> None:
    for name in ("flood_update.xml", "flood_cancel.xml"):
        response = post_cap(client, auth["duty"], sample(name, city))
        assert response.status_code == 404
        assert f"{UPSTREAM},SFSWJ-2024-0702-001" in response.json()["error"]["message"]
    assert (count(session, Alert), count(session, CapMessageRecord)) == (0, 0)


def test_a_drill_cancel_cannot_touch_a_live_alert(
    client: TestClient,
    city: builders.City,
    auth: dict[str, dict[str, str]],
    imported: dict[str, Any],
    samples: Samples,
) -> None:
    xml = samples("flood_cancel.xml").replace("<status>Actual</status>", "<status>Exercise</status>")
    response = post_cap(client, auth["duty"], xml)
    assert response.status_code == 422
    assert "上游消息是演练" in response.json()["error"]["message"]


def test_wrong_content_type_and_oversized_bodies_are_refused(
    client: TestClient,
    session: Session,
    city: builders.City,
    auth: dict[str, dict[str, str]],
    samples: Samples,
) -> None:
    xml = samples("flood_alert.xml")
    as_json = post_cap(client, auth["duty"], xml, "application/json")
    assert as_json.status_code == 415
    assert "application/cap+xml" in as_json.json()["error"]["message"]
    assert post_cap(client, auth["duty"], xml, "text/plain").status_code == 415
    big = xml.encode() + b" " * cap.MAX_CAP_BYTES
    declared = post_cap(client, auth["duty"], big)
    assert declared.status_code == 413
    assert "1 MiB" in declared.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    streamed = client.post(
        "/api/v1/alerts/cap", content=chunks(), headers={**auth["duty"], "Content-Type": "application/xml"}
    )
    assert streamed.status_code == 413
    assert count(session, Alert) == 0


def test_import_and_export_are_for_the_duty_desk(
    client: TestClient,
    city: builders.City,
    auth: dict[str, dict[str, str]],
    imported: dict[str, Any],
    samples: Samples,
) -> None:
    xml = samples("flood_alert.xml")
    assert post_cap(client, auth["propagandist"], xml).status_code == 403
    assert post_cap(client, auth["admin"], xml).status_code == 200
    url = f"/api/v1/alerts/{imported['alert']['id']}/cap"
    assert client.get(url, headers=auth["village"]).status_code == 403
    assert client.get("/api/v1/alerts/424242/cap", headers=auth["duty"]).status_code == 404


# --- export ------------------------------------------------------------------------------------


def test_every_state_exports_as_valid_cap(
    client: TestClient, city: builders.City, auth: dict[str, dict[str, str]]
) -> None:
    duty = auth["duty"]
    made = draft(client, duty, selector={"villages": [city.villages[0].code]})
    message = exported(client, duty, made["id"])
    assert (message.msg_type, message.references) == ("Alert", [])
    assert message.identifier == f"{CAP_SENDER}.alert.{made['id']}.r1"
    assert message.note == "尚未发送的真实预警草稿"
    [info] = message.infos
    assert info.areas[0].geocodes == [("行政区划代码", city.villages[0].code)]
    assert info.areas[0].description == city.villages[0].name

    live = sent(client, duty)
    message = exported(client, duty, live["id"])
    assert (message.status, message.msg_type) == ("Actual", "Alert")
    assert message.infos[0].severity == "Moderate"
    assert message.infos[0].expires == datetime.fromisoformat(live["valid_until"]).replace(microsecond=0)
    assert len(message.infos[0].areas[0].geocodes) == 4
    assert message.infos[0].areas[0].description.endswith("等 4 个村（社区）")

    client.post(f"/api/v1/alerts/{live['id']}/update", json={"text": "水位继续上涨。"}, headers=duty)
    message = exported(client, duty, live["id"])
    assert (message.msg_type, message.identifier) == ("Update", f"{CAP_SENDER}.alert.{live['id']}.r2")
    assert [r.identifier for r in message.references] == [f"{CAP_SENDER}.alert.{live['id']}.r1"]
    assert message.infos[0].description == "水位继续上涨。"

    client.post(f"/api/v1/alerts/{live['id']}/cancel", json={"reason": "险情解除"}, headers=duty)
    message = exported(client, duty, live["id"])
    assert (message.msg_type, message.note) == ("Cancel", "险情解除")
    assert message.identifier.endswith(".r2.cancel")

    drill = sent(client, duty, drill=True)
    assert exported(client, duty, drill["id"]).status == "Exercise"


def test_an_imported_alert_exports_with_a_reference_to_the_bureaus_message(
    client: TestClient,
    city: builders.City,
    auth: dict[str, dict[str, str]],
    imported: dict[str, Any],
    samples: Samples,
) -> None:
    message = exported(client, auth["duty"], imported["alert"]["id"])
    [upstream] = message.references
    assert (upstream.sender, upstream.identifier) == (UPSTREAM, "SFSWJ-2024-0702-001")
    original = cap.parse_cap(samples("flood_alert.xml").encode())
    assert upstream.sent == original.sent
    assert message.infos[0].areas[0].polygons[0][0] == (28.32, 113.9)
    assert len(message.infos[0].areas[0].geocodes) == 3


@pytest.mark.parametrize(
    ("level", "category", "drill"), [(3, "geological", True), (4, "severe_weather", False)]
)
def test_an_export_imports_back_as_the_same_kind_of_draft(
    client: TestClient,
    session: Session,
    auth: dict[str, dict[str, str]],
    level: int,
    category: str,
    drill: bool,
) -> None:
    live = sent(client, auth["duty"], level=level, category=category, drill=drill)
    xml = client.get(f"/api/v1/alerts/{live['id']}/cap", headers=auth["duty"]).content
    back = post_cap(client, auth["duty2"], xml)
    assert back.status_code == 201, back.text
    alert = back.json()["alert"]
    assert alert["id"] != live["id"]
    assert alert["status"] == "draft"
    assert (alert["level"], alert["category"], alert["drill"]) == (level, category, drill)
    assert alert["text"] == live["text"]
    assert back.json()["preview"]["total"] == 12
    assert session.get_one(Alert, alert["id"]).cap_sender == CAP_SENDER
