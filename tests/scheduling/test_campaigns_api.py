"""Campaign API: create and read back (presets and RFC 5545), every bad input refused, nothing half-stored."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from broadcast.auth.models import Role, User
from broadcast.scheduling.models import Campaign
from tests.scheduling.campaign_builders import (
    audit_actions,
    campaign_body,
    campaign_count,
    playlist_revision,
)


def test_create_with_a_preset_stores_rfc5545_and_reads_back(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]], users: dict[Role, User]
) -> None:
    revision = playlist_revision(session)
    session.commit()
    body = campaign_body(revision.playlist_id, name="森林防火", field_values={"fire_risk_level": "三"})
    response = client.post("/api/v1/campaigns", json=body, headers=headers[Role.propagandist])
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["key"] == f"campaign-{out['id']}"
    assert out["status"] == "draft"
    assert out["status_name"] == "草稿"
    assert out["version"] == 1
    assert out["recurrence"]["rrule"] == "FREQ=DAILY;BYHOUR=6,12,18;BYMINUTE=10,20,40;BYSETPOS=3,4,8"
    assert out["recurrence"]["dtstart"] == "2030-10-01T06:40:00+08:00"
    assert out["recurrence"]["text"] == "每天 06:40、12:10、18:20（2030-10-01 至 2031-04-30）"
    assert out["windows"] == ["06:30-07:30", "12:00-12:30", "18:00-19:00"]
    assert out["endpoints"] == 12
    assert out["revision"] == 1
    assert out["created_by_name"] == users[Role.propagandist].display_name
    assert out["field_values"] == {"fire_risk_level": "三"}
    assert client.get(f"/api/v1/campaigns/{out['id']}", headers=headers[Role.duty_officer]).json() == out
    assert audit_actions(session) == ["campaign.create"]


def test_create_with_raw_rfc5545_keeps_the_rule(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    revision = playlist_revision(session, revisions=2)
    session.commit()
    recurrence = {
        "dtstart": "2030-10-07T12:10:00+08:00",
        "rrule": "FREQ=WEEKLY;BYDAY=MO,WE",
        "rdates": ["2030-10-12T12:10:00+08:00"],
        "exdates": ["2030-10-09T04:10:00Z"],
    }
    body = campaign_body(
        revision.playlist_id,
        key="fire-2030",
        revision=1,
        recurrence=recurrence,
        selector={"tags": ["forest"]},
        exception_dates=["2030-10-14"],
        priority=7,
        windows=["18:00-19:00", "12:00-12:30"],
    )
    out = client.post("/api/v1/campaigns", json=body, headers=headers[Role.admin]).json()
    assert out["key"] == "fire-2030"
    assert out["revision"] == 1
    assert out["priority"] == 7
    assert out["recurrence"]["rrule"] == "FREQ=WEEKLY;BYDAY=MO,WE"
    assert out["recurrence"]["exdates"] == ["2030-10-09T12:10:00+08:00"]
    assert out["windows"] == ["12:00-12:30", "18:00-19:00"]
    assert out["endpoints"] == 3
    assert out["exception_dates"] == ["2030-10-14"]
    listed = client.get("/api/v1/campaigns", params={"q": "fire-"}, headers=headers[Role.propagandist]).json()
    assert [item["key"] for item in listed["items"]] == ["fire-2030"]
    drafts = client.get("/api/v1/campaigns", params={"status": "active"}, headers=headers[Role.admin]).json()
    assert drafts["total"] == 0


BAD: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "invalid rrule",
        {"recurrence": {"dtstart": "2030-10-01T06:40:00+08:00", "rrule": "FREQ=SOMETIMES"}},
        422,
        "FREQ",
    ),
    (
        "until before dtstart",
        {
            "recurrence": {
                "dtstart": "2030-10-01T06:40:00+08:00",
                "rrule": "FREQ=DAILY;UNTIL=20300901T000000Z",
            }
        },
        422,
        "早于 DTSTART",
    ),
    (
        "naive dtstart",
        {"recurrence": {"dtstart": "2030-10-01T06:40:00", "rrule": "FREQ=DAILY"}},
        422,
        "缺少时区",
    ),
    ("season reversed", {"season": {"first": "2031-04-30", "last": "2030-10-01"}}, 422, "早于开始日期"),
    ("no season", {"season": None}, 422, "请给出季节"),
    (
        "reaches nobody",
        {"selector": {"tags": ["school"], "exclude": {"tags": ["river"]}}},
        422,
        "没有任何终端",
    ),
    ("unknown tag", {"selector": {"tags": ["volcano"]}}, 422, "volcano"),
    ("unknown playlist", {"playlist_id": 999_999}, 422, "节目单 999999 不存在"),
    ("unknown revision", {"revision": 5}, 422, "没有第 5 版"),
    ("malformed window", {"windows": ["6:30~7:30"]}, 422, "应写成 HH:MM-HH:MM"),
    ("window crosses midnight", {"windows": ["23:00-01:00"]}, 422, "不能跨越午夜"),
    ("overlapping windows", {"windows": ["06:00-07:00", "06:30-08:00"]}, 422, "重叠"),
    (
        "time outside windows",
        {"recurrence": {"preset": "daily", "times": ["05:00"]}},
        422,
        "05:00 不在任何播出时段",
    ),
    ("bad time", {"recurrence": {"preset": "daily", "times": ["6点"]}}, 422, "应写成 HH:MM"),
    (
        "preset and raw",
        {"recurrence": {"preset": "daily", "times": ["06:40"], "rrule": "FREQ=DAILY"}},
        422,
        "二者选一",
    ),
    (
        "every n without n",
        {"recurrence": {"preset": "every_n_days", "times": ["06:40"]}},
        422,
        "every_n_days",
    ),
    (
        "dates outside season",
        {"recurrence": {"preset": "dates", "dates": ["2031-06-01"], "times": ["06:40"]}},
        422,
        "须在季节",
    ),
    (
        "never plays in season",
        {"recurrence": {"dtstart": "2030-10-01T12:10:00+08:00", "rrule": "FREQ=DAILY;COUNT=1"}}
        | {"season": {"first": "2030-10-02", "last": "2030-10-03"}},
        422,
        "不会播出任何一次",
    ),
    ("priority too high", {"priority": 10}, 422, "priority"),
    ("bad key", {"key": "Fire Season"}, 422, "key"),
    ("bad field name", {"field_values": {"fire level": "三"}}, 422, "自定义字段"),
]


def test_bad_input_is_refused_and_nothing_is_stored(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    """One app for all cases (each case is one request): the table stays fast on both databases."""
    revision = playlist_revision(session)
    session.commit()
    wrong = []
    for case, change, code, text in BAD:
        merged = {**campaign_body(revision.playlist_id), **change}
        body = {key: value for key, value in merged.items() if value is not None}
        response = client.post("/api/v1/campaigns", json=body, headers=headers[Role.propagandist])
        message = response.json().get("error", {}).get("message", "")
        if response.status_code != code or text not in message:
            wrong.append(f"{case}: {response.status_code} {message}")
    assert wrong == []
    assert campaign_count(session) == 0
    assert audit_actions(session) == []


def test_duplicate_key_is_a_conflict(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    revision = playlist_revision(session)
    session.commit()
    body = campaign_body(revision.playlist_id, key="drowning")
    assert client.post("/api/v1/campaigns", json=body, headers=headers[Role.propagandist]).status_code == 201
    again = client.post("/api/v1/campaigns", json=body, headers=headers[Role.propagandist])
    assert again.status_code == 409
    assert "drowning" in again.json()["error"]["message"]
    assert campaign_count(session) == 1


def test_who_may_read_and_write(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    revision = playlist_revision(session)
    session.commit()
    body = campaign_body(revision.playlist_id)
    for role in (Role.duty_officer, Role.village_admin):
        assert client.post("/api/v1/campaigns", json=body, headers=headers[role]).status_code == 403
    assert client.get("/api/v1/campaigns", headers=headers[Role.duty_officer]).status_code == 200
    assert client.get("/api/v1/campaigns", headers=headers[Role.village_admin]).status_code == 403
    assert client.get("/api/v1/campaigns").status_code == 401
    assert client.get("/api/v1/campaigns/424242", headers=headers[Role.admin]).status_code == 404


def test_edit_a_draft(client: TestClient, session: Session, headers: dict[Role, dict[str, str]]) -> None:
    revision = playlist_revision(session)
    session.commit()
    out = client.post(
        "/api/v1/campaigns", json=campaign_body(revision.playlist_id), headers=headers[Role.propagandist]
    ).json()
    url = f"/api/v1/campaigns/{out['id']}"
    patch = {
        "season": {"first": "2030-11-01", "last": "2031-03-31"},
        "priority": 6,
        "selector": {"tags": ["forest"]},
    }
    edited = client.patch(url, json=patch, headers=headers[Role.propagandist]).json()
    assert edited["season"] == {"first": "2030-11-01", "last": "2031-03-31"}
    assert edited["priority"] == 6
    assert edited["version"] == 2
    assert edited["endpoints"] == 3
    assert edited["recurrence"]["text"].startswith("每天 06:40、12:10、18:20")
    earlier = client.patch(
        url, json={"season": {"first": "2030-09-01", "last": "2031-03-31"}}, headers=headers[Role.admin]
    )
    assert earlier.status_code == 422
    assert "recurrence" in earlier.json()["error"]["message"]
    both = {
        "season": {"first": "2030-09-01", "last": "2031-03-31"},
        "recurrence": {"preset": "weekdays", "times": ["12:10"]},
    }
    moved = client.patch(url, json=both, headers=headers[Role.admin]).json()
    assert moved["recurrence"]["text"].startswith("工作日（周一至周五） 12:10")
    assert moved["version"] == 3
    narrowed = client.patch(url, json={"windows": ["07:00-08:00"]}, headers=headers[Role.admin])
    assert narrowed.status_code == 422
    assert "12:10 不在任何播出时段" in narrowed.json()["error"]["message"]
    assert (
        client.patch(url, json={"windows": ["12:00-13:00"]}, headers=headers[Role.admin]).status_code == 200
    )
    assert audit_actions(session) == [
        "campaign.create",
        "campaign.update",
        "campaign.update",
        "campaign.update",
    ]
    session.expire_all()
    stored = session.get(Campaign, out["id"])
    assert stored is not None
    assert stored.windows == ["12:00-13:00"]
    assert stored.version == 4
    assert client.delete(url, headers=headers[Role.propagandist]).status_code == 204
    assert campaign_count(session) == 0
    assert audit_actions(session)[-1] == "campaign.delete"
