"""Playlists over HTTP: create, read, revise (never edit), delete, and bad input refused whole."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from broadcast.auth.models import AuditEntry, Role, User
from broadcast.playlists.models import Playlist, PlaylistItem, PlaylistRevision
from broadcast.scheduling.models import Campaign
from tests.playlists.conftest import make_bulletin, make_chime, make_clip, playlist_body

Headers = dict[Role, dict[str, str]]


@pytest.fixture
def refs(session: Session, users: dict[Role, User]) -> dict[str, int]:
    clip, chime, bulletin = make_clip(session), make_chime(session), make_bulletin(session)
    session.commit()
    return {"clip": clip.id or 0, "chime": chime.id or 0, "bulletin": bulletin.id or 0}


def items(refs: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {"kind": "chime", "chime_id": refs["chime"]},
        {"kind": "bulletin", "bulletin_id": refs["bulletin"], "repeat": 2},
        {"kind": "silence", "silence_ms": 500},
        {"kind": "clip", "clip_id": refs["clip"]},
    ]


def create(client: TestClient, headers: Headers, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/playlists", json=body, headers=headers[Role.propagandist])
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def test_create_get_and_list(
    client: TestClient, headers: Headers, refs: dict[str, int], session: Session
) -> None:
    created = create(client, headers, playlist_body(items(refs), name="森林防火", repeat=3))

    assert created["current_revision"] == 1
    revision = created["revision"]
    assert revision["number"] == 1
    assert revision["repeat"] == 3
    assert [i["kind"] for i in revision["items"]] == ["chime", "bulletin", "silence", "clip"]
    assert [i["position"] for i in revision["items"]] == [1, 2, 3, 4]
    assert revision["items"][1]["repeat"] == 2
    got = client.get(f"/api/v1/playlists/{created['id']}", headers=headers[Role.admin]).json()
    assert got == created
    create(client, headers, playlist_body(items(refs), name="防汛通知"))
    listed = client.get("/api/v1/playlists", params={"q": "防火"}, headers=headers[Role.propagandist]).json()
    assert listed["total"] == 1
    assert listed["items"][0]["name"] == "森林防火"
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "playlist.create")).all()
    assert len(audit) == 2
    assert audit[0].after is not None
    assert len(audit[0].after["revision"]["items"]) == 4


def test_editing_makes_a_new_revision_and_leaves_the_old_one(
    client: TestClient, headers: Headers, refs: dict[str, int], session: Session
) -> None:
    created = create(client, headers, playlist_body(items(refs)))
    pid = created["id"]
    first = client.get(f"/api/v1/playlists/{pid}/revisions/1", headers=headers[Role.propagandist]).json()

    edit = {"items": [{"kind": "clip", "clip_id": refs["clip"], "repeat": 5}], "repeat": 2}
    response = client.post(
        f"/api/v1/playlists/{pid}/revisions", json=edit, headers=headers[Role.propagandist]
    )

    assert response.status_code == 201, response.text
    assert response.json()["number"] == 2
    assert client.get(f"/api/v1/playlists/{pid}/revisions/1", headers=headers[Role.admin]).json() == first
    revisions = client.get(f"/api/v1/playlists/{pid}/revisions", headers=headers[Role.admin]).json()
    assert [(r["number"], len(r["items"])) for r in revisions] == [(1, 4), (2, 1)]
    detail = client.get(f"/api/v1/playlists/{pid}", headers=headers[Role.admin]).json()
    assert detail["current_revision"] == 2
    assert detail["revision"]["items"][0]["repeat"] == 5
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "playlist.revise")).one()
    assert audit.before is not None
    assert audit.after is not None
    assert (audit.before["number"], audit.after["number"]) == (1, 2)


CLIP = {"kind": "clip", "clip_id": 1}
BAD_BODIES = [
    pytest.param({"items": []}, "有声条目", id="empty"),
    pytest.param({"items": [{"kind": "silence", "silence_ms": 1000}]}, "有声条目", id="only silence"),
    pytest.param({"items": [CLIP] * 101}, "items", id="101 items"),
    pytest.param({"items": [{**CLIP, "repeat": 0}]}, "repeat", id="item repeat 0"),
    pytest.param({"items": [{**CLIP, "repeat": 21}]}, "repeat", id="item repeat 21"),
    pytest.param({"items": [CLIP], "repeat": 0}, "repeat", id="playlist repeat 0"),
    pytest.param({"items": [CLIP], "repeat": 11}, "repeat", id="playlist repeat 11"),
    pytest.param({"items": [CLIP, {"kind": "silence", "silence_ms": 99}]}, "silence_ms", id="silence 99 ms"),
    pytest.param(
        {"items": [CLIP, {"kind": "silence", "silence_ms": 600_001}]}, "silence_ms", id="silence over 10 min"
    ),
    pytest.param({"items": [{"kind": "clip"}]}, "clip_id", id="clip without id"),
    pytest.param({"items": [{"kind": "clip", "clip_id": 1, "chime_id": 1}]}, "chime_id", id="two refs"),
    pytest.param({"items": [{"kind": "video", "clip_id": 1}]}, "kind", id="unknown kind"),
]


@pytest.mark.parametrize(("body", "needle"), BAD_BODIES)
def test_bad_playlists_are_refused_whole(
    client: TestClient,
    headers: Headers,
    refs: dict[str, int],
    session: Session,
    body: dict[str, Any],
    needle: str,
) -> None:
    response = client.post(
        "/api/v1/playlists", json=playlist_body(**body), headers=headers[Role.propagandist]
    )

    assert response.status_code == 422, response.text
    assert needle in response.text
    assert session.exec(select(Playlist)).all() == []
    assert session.exec(select(PlaylistRevision)).all() == []


def test_missing_references_are_named(
    client: TestClient, headers: Headers, refs: dict[str, int], session: Session
) -> None:
    body = playlist_body(
        [
            {"kind": "clip", "clip_id": refs["clip"]},
            {"kind": "clip", "clip_id": 9999},
            {"kind": "chime", "chime_id": 8888},
            {"kind": "bulletin", "bulletin_id": 7777},
        ]
    )

    response = client.post("/api/v1/playlists", json=body, headers=headers[Role.propagandist])

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["details"] == {"clip_id": [9999], "bulletin_id": [7777], "chime_id": [8888]}
    assert "9999" in error["message"]
    assert "7777" in error["message"]
    assert session.exec(select(Playlist)).all() == []
    assert session.exec(select(PlaylistItem)).all() == []


def test_bad_revision_leaves_the_playlist_as_it_was(
    client: TestClient, headers: Headers, refs: dict[str, int], session: Session
) -> None:
    pid = create(client, headers, playlist_body(items(refs)))["id"]
    bad = {"items": [{"kind": "clip", "clip_id": 4242}]}

    response = client.post(f"/api/v1/playlists/{pid}/revisions", json=bad, headers=headers[Role.propagandist])

    assert response.status_code == 422
    assert session.exec(select(PlaylistRevision)).all()[-1].number == 1
    assert client.get(f"/api/v1/playlists/{pid}", headers=headers[Role.admin]).json()["current_revision"] == 1


def test_duplicate_name_unknown_ids_and_roles(
    client: TestClient, headers: Headers, refs: dict[str, int]
) -> None:
    body = playlist_body(items(refs), name="重名")
    create(client, headers, body)

    assert client.post("/api/v1/playlists", json=body, headers=headers[Role.admin]).status_code == 409
    assert client.get("/api/v1/playlists/999", headers=headers[Role.admin]).status_code == 404
    assert client.get("/api/v1/playlists/1/revisions/99", headers=headers[Role.admin]).status_code == 404
    for role in (Role.duty_officer, Role.village_admin):
        assert client.post("/api/v1/playlists", json=body, headers=headers[role]).status_code == 403
        assert client.get("/api/v1/playlists", headers=headers[role]).status_code == 403


def test_delete_cascades_and_frees_the_clip(
    client: TestClient, headers: Headers, refs: dict[str, int], session: Session
) -> None:
    pid = create(client, headers, playlist_body(items(refs), name="将删除"))["id"]
    client.post(
        f"/api/v1/playlists/{pid}/revisions",
        json={"items": [{"kind": "clip", "clip_id": refs["clip"]}]},
        headers=headers[Role.propagandist],
    )

    response = client.delete(f"/api/v1/playlists/{pid}", headers=headers[Role.propagandist])

    assert response.status_code == 204
    session.expire_all()
    assert session.exec(select(PlaylistRevision)).all() == []
    assert session.exec(select(PlaylistItem)).all() == []
    clip_url = f"/api/v1/clips/{refs['clip']}"
    assert client.delete(clip_url, headers=headers[Role.propagandist]).status_code == 204
    assert (
        session.exec(select(AuditEntry).where(AuditEntry.action == "playlist.delete")).one().before
        is not None
    )
    assert client.delete(f"/api/v1/playlists/{pid}", headers=headers[Role.propagandist]).status_code == 404


def test_a_playlist_a_campaign_uses_cannot_be_deleted(
    client: TestClient, headers: Headers, refs: dict[str, int], session: Session
) -> None:
    created = create(client, headers, playlist_body(items(refs), name="计划在用"))
    campaign = Campaign(
        key="spring-fire",
        name="春季防火",
        playlist_id=created["id"],
        revision_id=created["revision"]["id"],
        season_start=date(2026, 3, 1),
        season_end=date(2026, 5, 31),
        dtstart=datetime(2026, 3, 1, tzinfo=UTC),
    )
    session.add(campaign)
    session.commit()

    response = client.delete(f"/api/v1/playlists/{created['id']}", headers=headers[Role.propagandist])

    assert response.status_code == 409
    assert "计划在用" in response.json()["error"]["message"]
    session.expire_all()
    assert session.get(Playlist, created["id"]) is not None
    assert len(session.exec(select(PlaylistItem)).all()) == 4
    assert session.exec(select(AuditEntry).where(AuditEntry.action == "playlist.delete")).all() == []
