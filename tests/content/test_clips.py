"""Clip upload through the API: every accepted format, duplicates, and bad input storing nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from broadcast.auth.models import AuditEntry, Role
from broadcast.config import Settings
from broadcast.content.audio import measure_loudness
from broadcast.content.models import AudioBlob, Clip
from broadcast.content.store import get_store
from tests.content.conftest import ffmpeg, make_six_hours, make_speech, stored_files

Headers = dict[Role, dict[str, str]]


def upload(
    client: TestClient,
    headers: dict[str, str],
    path: Path,
    *,
    name: str | None = None,
    title: str = "防火宣传",
) -> tuple[int, dict[str, object]]:
    response = client.post(
        "/api/v1/clips",
        headers=headers,
        data={"title": title, "tags": ["森林防火", "春季"]},
        files={"file": (name or path.name, path.read_bytes(), "audio/mpeg")},
    )
    return response.status_code, response.json()


def assert_nothing_stored(session: Session, settings: Settings) -> None:
    assert session.exec(select(Clip)).all() == []
    assert session.exec(select(AudioBlob)).all() == []
    assert session.exec(select(AuditEntry).where(AuditEntry.entity_type == "clip")).all() == []
    assert stored_files(settings) == []


@pytest.mark.parametrize(
    ("fmt", "source_format"),
    [
        ("wav", "wav"),
        ("mp3", "mp3"),
        ("ogg", "ogg/opus"),
        ("m4a", "m4a/aac"),
        ("flac", "flac"),
        ("amr", "amr/amr_nb"),
    ],
)
def test_each_recording_format_becomes_the_house_format(
    lite_client: TestClient,
    lite_headers: Headers,
    lite_session: Session,
    settings: Settings,
    recordings: dict[str, Path],
    fmt: str,
    source_format: str,
) -> None:
    # A misleading name on purpose: the content decides, never the extension.
    status, body = upload(lite_client, lite_headers[Role.propagandist], recordings[fmt], name="录音.txt")
    assert status == 201, body
    assert body["created"] is True
    assert body["source_format"] == source_format
    assert body["original_name"] == "录音.txt"
    assert body["tags"] == ["森林防火", "春季"]
    assert body["duration_ms"] == pytest.approx(3000, abs=100)
    path = get_store(settings).path_for(str(body["blob_sha256"]))
    assert measure_loudness(path).integrated_lufs == pytest.approx(-16.0, abs=1.0)
    audit = lite_session.exec(select(AuditEntry).where(AuditEntry.action == "clip.create")).one()
    assert audit.entity_id == str(body["id"])


def test_the_same_recording_twice_is_the_same_clip(
    lite_client: TestClient, lite_headers: Headers, recordings: dict[str, Path]
) -> None:
    first_status, first = upload(lite_client, lite_headers[Role.propagandist], recordings["mp3"])
    again_status, again = upload(lite_client, lite_headers[Role.admin], recordings["mp3"], title="另一个标题")
    assert (first_status, again_status) == (201, 200)
    assert again["id"] == first["id"]
    assert again["created"] is False
    assert "已上传过" in str(again["message"])
    assert again["title"] == "防火宣传"


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "notice.mp3"
    path.write_text("村民请注意，明天停水。\n" * 40, encoding="utf-8")
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.mp3"
    path.write_bytes(b"")
    return path


def _truncated(tmp_path: Path) -> Path:
    """An MP3 cut at 60 %: its Info header still promises the full 5 s."""
    whole = make_speech(tmp_path / "whole.mp3", seconds=5, codec=("-c:a", "libmp3lame", "-b:a", "64k"))
    data = whole.read_bytes()
    path = tmp_path / "cut.mp3"
    path.write_bytes(data[: len(data) * 6 // 10])
    return path


def _broken_tail(tmp_path: Path) -> Path:
    """A headerless MP3 whose last part is garbage, as from an interrupted copy."""
    whole = make_speech(
        tmp_path / "whole.mp3", seconds=3, codec=("-c:a", "libmp3lame", "-b:a", "64k", "-write_xing", "0")
    )
    data = whole.read_bytes()
    path = tmp_path / "broken.mp3"
    path.write_bytes(data[: len(data) // 2] + bytes(range(256)) * 40)
    return path


def _video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:d=1", "-f", "lavfi", "-i", "sine=d=1",
           "-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(path))  # fmt: skip
    return path


def _six_hours(tmp_path: Path) -> Path:
    return make_six_hours(tmp_path / "six.mp3")


def _aiff(tmp_path: Path) -> Path:
    return make_speech(tmp_path / "rec.mp3", seconds=1, codec=("-f", "aiff"))


@pytest.mark.parametrize(
    ("make", "status", "says"),
    [
        (_text, 415, "不是音频文件"),
        (_empty, 422, "空的"),
        (_truncated, 422, "文件不完整"),
        (_broken_tail, 422, "无法完整解码"),
        (_six_hours, 422, "录音过长"),
        (_video, 415, "包含视频"),
        (_aiff, 415, "不支持的文件格式 aiff"),
    ],
    ids=["text-renamed-mp3", "zero-bytes", "truncated", "broken-tail", "six-hours", "video", "aiff"],
)
def test_bad_input_is_a_precise_4xx_and_stores_nothing(
    lite_client: TestClient,
    lite_headers: Headers,
    lite_session: Session,
    settings: Settings,
    tmp_path: Path,
    make: Callable[[Path], Path],
    status: int,
    says: str,
) -> None:
    code, body = upload(lite_client, lite_headers[Role.propagandist], make(tmp_path))
    assert code == status, body
    assert says in body["error"]["message"]  # type: ignore[index]
    assert_nothing_stored(lite_session, settings)


def test_too_large_is_413_and_stores_nothing(
    lite_app: FastAPI, lite_headers: Headers, lite_session: Session, settings: Settings, tmp_path: Path
) -> None:
    lite_app.state.settings = settings.model_copy(update={"clip_max_bytes": 100_000})
    big = make_speech(tmp_path / "big.wav", seconds=3)
    with TestClient(lite_app) as client:
        code, body = upload(client, lite_headers[Role.propagandist], big)
    assert code == 413
    assert "文件过大" in body["error"]["message"]  # type: ignore[index]
    assert_nothing_stored(lite_session, settings)


def test_upload_needs_a_content_role_and_a_title(
    lite_client: TestClient, lite_headers: Headers, recordings: dict[str, Path]
) -> None:
    assert upload(lite_client, {}, recordings["wav"])[0] == 401
    assert upload(lite_client, lite_headers[Role.duty_officer], recordings["wav"])[0] == 403
    status, body = upload(lite_client, lite_headers[Role.propagandist], recordings["wav"], title="  ")
    assert status == 422
    assert "标题" in body["error"]["message"]  # type: ignore[index]
    missing = lite_client.post("/api/v1/clips", headers=lite_headers[Role.propagandist], data={"title": "x"})
    assert missing.status_code in (415, 422)


def test_upload_works_on_both_databases(
    client: TestClient, headers: Headers, session: Session, recordings: dict[str, Path]
) -> None:
    status, body = upload(client, headers[Role.propagandist], recordings["amr"])
    assert status == 201, body
    assert upload(client, headers[Role.propagandist], recordings["amr"])[0] == 200
    assert len(session.exec(select(Clip)).all()) == 1
