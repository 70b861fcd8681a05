"""The bulletins API: writing, validation, deletion rules, preview and the engine list."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from broadcast.auth.models import AuditEntry, Role, User
from broadcast.playlists.models import ItemKind, Playlist, PlaylistItem, PlaylistRevision
from broadcast.regions.models import Village

Headers = dict[Role, dict[str, str]]
FIRE = {
    "title": "森林防火",
    "text": "{village}的村民朋友们，{date}起进入森林防火期，严禁野外用火。火险等级：{fire_risk_level}级。",
    "custom_fields": ["fire_risk_level"],
}


def _create(client: TestClient, headers: Headers, **overrides: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/bulletins", json={**FIRE, **overrides}, headers=headers[Role.propagandist]
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _error(client: TestClient, headers: Headers, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/bulletins", json=body, headers=headers[Role.propagandist])
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_create_get_list_update(client: TestClient, headers: Headers, users: dict[Role, User]) -> None:
    created = _create(client, headers)
    assert created["scope"] == "per_village"
    assert created["fields_used"] == ["village", "date", "fire_risk_level"]
    assert created["created_by"] == users[Role.propagandist].id
    other = _create(client, headers, title="防溺水", text="全市中小学生请注意防溺水。", custom_fields=[])
    assert other["scope"] == "once"

    url = f"/api/v1/bulletins/{created['id']}"
    assert client.get(url, headers=headers[Role.admin]).json()["title"] == "森林防火"
    page = client.get("/api/v1/bulletins", params={"q": "溺水"}, headers=headers[Role.propagandist]).json()
    assert [b["id"] for b in page["items"]] == [other["id"]]
    assert page["total"] == 1

    patched = client.patch(url, json={"rate": 120, "engine": "espeak"}, headers=headers[Role.propagandist])
    assert patched.status_code == 200, patched.text
    assert (patched.json()["rate"], patched.json()["engine"], patched.json()["text"]) == (
        120,
        "espeak",
        FIRE["text"],
    )
    cleared = client.patch(url, json={"engine": None}, headers=headers[Role.propagandist])
    assert cleared.json()["engine"] is None


BAD_BULLETINS: list[tuple[dict[str, Any], str]] = [
    ({"text": "{village}注意{rain_level}"}, "{rain_level}"),
    ({"text": "严禁野外用火" * 2000}, "上限 2000"),
    ({"text": "。，！？…… \n  "}, "没有可朗读的文字"),
    ({"text": "{{}}"}, "没有可朗读的文字"),
    ({"text": "{village"}, "花括号"),
    ({"engine": "piper"}, "可用引擎：espeak、gtts"),
    ({"engine": "espeak", "voice": "zh-CN"}, "可用语音：cmn"),
    ({"custom_fields": ["village"]}, "重名"),
    ({"rate": 500}, "rate"),
    ({"title": "   "}, "标题"),
    ({"text": ""}, "text"),
    ({"colour": "red"}, "colour"),
]


def test_bad_input_is_422_and_stores_nothing(client: TestClient, headers: Headers, session: Session) -> None:
    for body, expected in BAD_BULLETINS:
        response = client.post("/api/v1/bulletins", json={**FIRE, **body}, headers=headers[Role.propagandist])
        assert response.status_code == 422, (body, response.text)
        assert expected in response.json()["error"]["message"], body
    listing = client.get("/api/v1/bulletins", headers=headers[Role.propagandist]).json()
    assert listing["total"] == 0
    assert session.exec(select(AuditEntry).where(AuditEntry.entity_type == "bulletin")).all() == []


def test_update_is_validated_too(client: TestClient, headers: Headers) -> None:
    url = f"/api/v1/bulletins/{_create(client, headers)['id']}"
    response = client.patch(url, json={"custom_fields": []}, headers=headers[Role.propagandist])
    assert response.status_code == 422
    assert "{fire_risk_level}" in response.json()["error"]["message"]
    assert client.get(url, headers=headers[Role.propagandist]).json()["custom_fields"] == ["fire_risk_level"]


@pytest.mark.parametrize("role", [Role.duty_officer, Role.village_admin])
def test_only_content_staff_may_write(client: TestClient, headers: Headers, role: Role) -> None:
    assert client.post("/api/v1/bulletins", json=FIRE, headers=headers[role]).status_code == 403
    assert client.get("/api/v1/bulletins", headers=headers[role]).status_code == 403


def test_missing_bulletin_is_404(client: TestClient, headers: Headers) -> None:
    response = client.get("/api/v1/bulletins/999", headers=headers[Role.propagandist])
    assert response.status_code == 404
    assert "999" in response.json()["error"]["message"]


def _use_in_playlist(session: Session, bulletin_id: int, name: str) -> None:
    playlist = Playlist(name=name)
    session.add(playlist)
    session.flush()
    revision = PlaylistRevision(playlist_id=playlist.id or 0, number=1)
    session.add(revision)
    session.flush()
    item = PlaylistItem(
        revision_id=revision.id or 0, position=0, kind=ItemKind.bulletin, bulletin_id=bulletin_id
    )
    session.add(item)
    session.commit()


def test_delete_is_refused_while_a_playlist_uses_it(
    client: TestClient, headers: Headers, session: Session
) -> None:
    used = _create(client, headers)
    _use_in_playlist(session, used["id"], "秋冬森林防火节目")
    response = client.delete(f"/api/v1/bulletins/{used['id']}", headers=headers[Role.propagandist])
    assert response.status_code == 409
    assert "秋冬森林防火节目" in response.json()["error"]["message"]
    assert response.json()["error"]["details"] == {"playlists": ["秋冬森林防火节目"]}

    unused = _create(client, headers, title="临时")
    assert (
        client.delete(f"/api/v1/bulletins/{unused['id']}", headers=headers[Role.propagandist]).status_code
        == 204
    )
    assert (
        client.get(f"/api/v1/bulletins/{unused['id']}", headers=headers[Role.propagandist]).status_code == 404
    )
    actions = session.exec(select(AuditEntry.action).where(AuditEntry.entity_type == "bulletin")).all()
    assert sorted(actions) == ["bulletin.create", "bulletin.create", "bulletin.delete"]


def test_preview_speaks_the_village_version_and_caches_it(
    client: TestClient, headers: Headers, session: Session
) -> None:
    bulletin = _create(client, headers, rate=140)
    village = session.exec(select(Village)).first()
    assert village is not None
    body = {"village": village.code, "date": "2026-10-01", "fields": {"fire_risk_level": "4"}}
    url = f"/api/v1/bulletins/{bulletin['id']}/preview"
    first = client.post(url, json=body, headers=headers[Role.propagandist])
    assert first.status_code == 200, first.text
    preview = first.json()
    assert preview["text"].startswith(f"{village.name}的村民朋友们，2026年10月1日起")
    assert "二零二六年十月一日" in preview["spoken_text"]
    assert "四级" in preview["spoken_text"]
    assert preview["audio_url"] == f"/api/v1/audio/{preview['audio_sha256']}"
    assert 2000 < preview["duration_ms"] < 20000
    assert (preview["engine"], preview["voice"], preview["cached"]) == ("espeak", "cmn", False)
    again = client.post(url, json=body, headers=headers[Role.propagandist]).json()
    assert again["cached"] is True
    assert again["audio_sha256"] == preview["audio_sha256"]


def test_preview_bad_input_is_422(client: TestClient, headers: Headers, session: Session) -> None:
    code = session.exec(select(Village.code)).first()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"date": "2026-10-01", "fields": {"fire_risk_level": "4"}}, "{village}"),
        ({"village": "000000000000", "fields": {"fire_risk_level": "4"}}, "000000000000"),
        ({"village": code, "fields": {}}, "{fire_risk_level}"),
        ({"village": code, "fields": {"fire_risk_level": "4", "wind": "5"}}, "wind"),
        ({"village": code, "date": "2026-13-01"}, "date"),
        ({"village": code, "volume": 3}, "volume"),
    ]
    url = f"/api/v1/bulletins/{_create(client, headers)['id']}/preview"
    for body, expected in cases:
        response = client.post(url, json=body, headers=headers[Role.propagandist])
        assert response.status_code == 422, (body, response.text)
        assert expected in response.json()["error"]["message"], body
    punctuation = _create(client, headers, text="{fire_risk_level}")
    url = f"/api/v1/bulletins/{punctuation['id']}/preview"
    response = client.post(
        url, json={"fields": {"fire_risk_level": "。！"}}, headers=headers[Role.propagandist]
    )
    assert response.status_code == 422
    assert "没有可朗读的文字" in response.json()["error"]["message"]


def test_engine_list(client: TestClient, headers: Headers) -> None:
    response = client.get("/api/v1/tts/engines", headers=headers[Role.propagandist])
    assert response.status_code == 200
    engines = {e["name"]: e for e in response.json()}
    assert engines["espeak"]["available"] is True
    assert engines["espeak"]["online"] is False
    assert engines["espeak"]["default_order"] == 0
    assert {v["id"] for v in engines["espeak"]["voices"]} >= {"cmn", "cmn+f3"}
    assert engines["gtts"]["online"] is True
    assert engines["gtts"]["default_order"] is None
    assert client.get("/api/v1/tts/engines", headers=headers[Role.village_admin]).status_code == 403
