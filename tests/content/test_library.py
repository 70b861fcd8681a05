"""The clip library after upload: list, filter, edit, delete (refused while used), serve audio, chimes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from broadcast.alerts.models import AlertStatus
from broadcast.auth.audit import SYSTEM
from broadcast.auth.models import AuditEntry, Role, User
from broadcast.config import Settings
from broadcast.content import intake, service
from broadcast.content.audio import Probe, Stream, measure_loudness
from broadcast.content.models import Clip
from broadcast.content.schemas import normalise_tags
from broadcast.content.store import get_store
from broadcast.errors import Conflict, Invalid
from broadcast.playlists.models import ItemKind, Playlist, PlaylistItem, PlaylistRevision
from tests.content.builders import alert_playing, stored_clip
from tests.content.test_clips import Headers, upload


@pytest.fixture
def clip(lite_client: TestClient, lite_headers: Headers, recordings: dict[str, Path]) -> dict[str, object]:
    status, body = upload(lite_client, lite_headers[Role.propagandist], recordings["wav"])
    assert status == 201
    return body


def _use_in_playlist(session: Session, clip_id: int, name: str, user: User) -> None:
    playlist = Playlist(name=name, created_by=user.id)
    session.add(playlist)
    session.flush()
    revision = PlaylistRevision(playlist_id=playlist.id or 0, number=1, created_by=user.id)
    session.add(revision)
    session.flush()
    session.add(PlaylistItem(revision_id=revision.id or 0, position=0, kind=ItemKind.clip, clip_id=clip_id))
    session.commit()


def test_list_filters_by_text_and_whole_tags(
    lite_client: TestClient, lite_headers: Headers, clip: dict[str, object]
) -> None:
    def ids(**params: str) -> list[object]:
        response = lite_client.get("/api/v1/clips", headers=lite_headers[Role.propagandist], params=params)
        assert response.status_code == 200
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [clip["id"]]
    assert ids(q="防火") == [clip["id"]]
    assert ids(q="rec.wav") == [clip["id"]]
    assert ids(q="防汛") == []
    assert ids(tag="森林防火") == [clip["id"]]
    assert ids(tag="森林") == []
    assert ids(tag="%") == []


def test_edit_and_delete_are_audited(
    lite_client: TestClient, lite_headers: Headers, lite_session: Session, clip: dict[str, object]
) -> None:
    url = f"/api/v1/clips/{clip['id']}"
    content = lite_headers[Role.propagandist]
    edited = lite_client.patch(url, headers=content, json={"title": "防汛通知", "tags": "汛期，紧急"})
    assert edited.status_code == 200
    assert (edited.json()["title"], edited.json()["tags"]) == ("防汛通知", ["汛期", "紧急"])
    assert lite_client.patch(url, headers=content, json={"uploader": 1}).status_code == 422
    assert lite_client.get(url, headers=lite_headers[Role.duty_officer]).status_code == 403
    assert lite_client.delete(url, headers=content).status_code == 204
    assert lite_client.get(url, headers=content).status_code == 404
    actions = lite_session.exec(select(AuditEntry.action).where(AuditEntry.entity_type == "clip")).all()
    assert sorted(actions) == ["clip.create", "clip.delete", "clip.update"]


def test_deleting_a_clip_a_playlist_uses_is_refused_naming_the_playlists(
    lite_client: TestClient,
    lite_headers: Headers,
    lite_session: Session,
    lite_users: dict[Role, User],
    clip: dict[str, object],
) -> None:
    clip_id = int(str(clip["id"]))
    for name in ["早间新闻", "森林防火周"]:
        _use_in_playlist(lite_session, clip_id, name, lite_users[Role.propagandist])
    response = lite_client.delete(f"/api/v1/clips/{clip_id}", headers=lite_headers[Role.propagandist])
    assert response.status_code == 409
    error = response.json()["error"]
    assert "「早间新闻」" in error["message"]
    assert "「森林防火周」" in error["message"]
    assert error["details"] == {"playlists": ["早间新闻", "森林防火周"]}
    assert lite_session.get(Clip, clip_id) is not None


def test_deleting_a_clip_alerts_use_is_refused_naming_the_latest_alerts(
    client: TestClient, headers: Headers, session: Session, users: dict[Role, User]
) -> None:
    clip = stored_clip(session, "县长防汛动员")
    kept = [
        ("山洪预警", AlertStatus.discarded),
        ("防汛演练", AlertStatus.draft),
        ("暴雨橙色预警", AlertStatus.expired),
        ("水库泄洪通知", AlertStatus.cancelled),
        ("转移群众", AlertStatus.active),
    ]
    alerts = [alert_playing(session, clip, title, status) for title, status in kept]
    _use_in_playlist(session, clip.id or 0, "汛期节目", users[Role.propagandist])
    response = client.delete(f"/api/v1/clips/{clip.id}", headers=headers[Role.propagandist])
    assert response.status_code == 409
    error = response.json()["error"]
    latest = alerts[:1:-1]
    named = "、".join(f"#{a.id}「{a.title}」" for a in latest)
    assert error["message"] == (
        f"录音素材「县长防汛动员」被预警 {named}等 5 条使用，不能删除：预警（含草稿和已作废的）"
        "作为播发记录一直保留，它用到的录音也须保留。如不再使用这条录音，可修改它的标题或标签"
        "（如加标签「停用」）加以区分"
    )
    assert error["details"] == {"alerts": [{"id": a.id, "title": a.title} for a in latest], "alert_count": 5}
    session.expire_all()
    assert session.get(Clip, clip.id) is not None


def test_a_clip_one_alert_uses_is_named_without_a_count(
    client: TestClient, headers: Headers, session: Session
) -> None:
    used, idle = stored_clip(session, "演练录音"), stored_clip(session, "旧录音")
    alert = alert_playing(session, used, "防溺水演练")
    session.commit()
    refused = client.delete(f"/api/v1/clips/{used.id}", headers=headers[Role.propagandist])
    assert refused.status_code == 409
    assert refused.json()["error"]["message"].startswith(
        f"录音素材「演练录音」被预警 #{alert.id}「防溺水演练」使用，不能删除："
    )
    assert client.delete(f"/api/v1/clips/{idle.id}", headers=headers[Role.propagandist]).status_code == 204


def test_a_use_that_lands_after_the_checks_is_a_precise_conflict(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = stored_clip(session, "演练录音")
    alert_playing(session, clip, "防溺水演练")
    session.commit()
    # The alert arrived between the checks and the delete: only the foreign key still sees it.
    monkeypatch.setattr(service, "_refuse_if_alerts_use", lambda *_: None)
    with pytest.raises(Conflict, match="「演练录音」刚被节目单或预警用上，不能删除：请刷新后再试一次"):
        service.delete_clip(session, clip=clip, actor=SYSTEM)
    session.rollback()
    assert session.get(Clip, clip.id) is not None


def test_audio_is_served_with_etag_and_ranges(
    lite_client: TestClient, lite_headers: Headers, settings: Settings, clip: dict[str, object]
) -> None:
    url = str(clip["audio_url"])
    viewer = lite_headers[Role.village_admin]
    whole = lite_client.get(url, headers=viewer)
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "audio/mpeg"
    assert whole.headers["etag"] == f'"{clip["blob_sha256"]}"'
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.content == get_store(settings).path_for(str(clip["blob_sha256"])).read_bytes()

    cached = lite_client.get(url, headers={**viewer, "If-None-Match": whole.headers["etag"]})
    assert (cached.status_code, cached.content) == (304, b"")

    part = lite_client.get(url, headers={**viewer, "Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"

    beyond = lite_client.get(url, headers={**viewer, "Range": f"bytes={len(whole.content) + 10}-"})
    assert beyond.status_code == 416

    assert lite_client.get(url).status_code == 401
    assert lite_client.get("/api/v1/audio/" + "0" * 64, headers=viewer).status_code == 404
    assert lite_client.get("/api/v1/audio/..%2F..%2Fetc", headers=viewer).status_code == 404


def test_builtin_chimes_are_generated_once_at_the_house_loudness(
    lite_client: TestClient, lite_headers: Headers, lite_session: Session, settings: Settings
) -> None:
    first = lite_client.get("/api/v1/chimes", headers=lite_headers[Role.propagandist])
    assert first.status_code == 200
    chimes = first.json()
    assert [c["kind"] for c in chimes] == ["attention", "closing"]
    for chime in chimes:
        assert chime["duration_ms"] == pytest.approx(1950, abs=100)
        path = get_store(settings).path_for(chime["blob_sha256"])
        assert measure_loudness(path).integrated_lufs == pytest.approx(-16.0, abs=1.0)
    again = lite_client.get("/api/v1/chimes", headers=lite_headers[Role.admin])
    assert again.json() == chimes
    generated = lite_session.exec(select(AuditEntry).where(AuditEntry.action == "chime.generate")).all()
    assert len(generated) == 2
    assert lite_client.get("/api/v1/chimes", headers=lite_headers[Role.duty_officer]).status_code == 403


def _probe(duration_ms: int, *, estimated: bool = False) -> Probe:
    stream = Stream(codec_type="audio", codec_name="mp3", sample_rate=48000, channels=1)
    return Probe(format_name="mp3", duration_ms=duration_ms, streams=(stream,), duration_estimated=estimated)


@pytest.mark.parametrize(
    ("declared_ms", "decoded_ms", "estimated", "ok"),
    [
        (10_000, 10_030, False, True),
        (10_000, 9_200, False, True),
        (10_000, 8_000, False, False),
        (100_000, 96_000, False, True),
        (100_000, 90_000, False, False),
        (10_000, 5_000, True, True),
    ],
)
def test_truncation_is_a_decode_shorter_than_the_header_promised(
    settings: Settings, declared_ms: int, decoded_ms: int, estimated: bool, ok: bool
) -> None:
    declared = _probe(declared_ms, estimated=estimated)
    if ok:
        intake.check_decoded(_probe(decoded_ms), declared=declared, settings=settings)
    else:
        with pytest.raises(Invalid, match="文件不完整"):
            intake.check_decoded(_probe(decoded_ms), declared=declared, settings=settings)


def test_tags_split_on_chinese_and_ascii_commas() -> None:
    assert normalise_tags(["汛期，紧急、通知", " 汛期 ", "a,b", ""]) == ["汛期", "紧急", "通知", "a", "b"]


@pytest.mark.parametrize(
    ("header", "matches"),
    [(None, False), ('"x"', False), ('"abc"', True), ('W/"abc", "x"', True), ("*", True)],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert service.etag_matches(header, '"abc"') is matches
