"""Builders for the playlists tests: content rows to point at, and playlist request bodies."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from broadcast.auth.models import Role
from broadcast.config import Settings
from broadcast.content.models import AudioBlob, Bulletin, Chime, ChimeKind, Clip
from broadcast.content.store import AudioStore, get_store, ingest_audio
from tests import builders
from tests.conftest import TEST_SECRET, bearer

_counter = itertools.count(1)


def make_blob(session: Session, *, duration_ms: int = 2000) -> AudioBlob:
    sha = hashlib.sha256(f"blob-{next(_counter)}".encode()).hexdigest()
    blob = AudioBlob(
        sha256=sha, size_bytes=1000, duration_ms=duration_ms, sample_rate=48000, channels=1, codec="mp3"
    )
    session.add(blob)
    session.flush()
    return blob


def make_clip(session: Session, *, title: str = "防火录音", blob: AudioBlob | None = None) -> Clip:
    blob = blob or make_blob(session)
    clip = Clip(
        title=title,
        blob_sha256=blob.sha256,
        source_sha256=hashlib.sha256(f"source-{next(_counter)}".encode()).hexdigest(),
        source_format="amr",
        original_name="phone.amr",
        duration_ms=blob.duration_ms,
    )
    session.add(clip)
    session.flush()
    return clip


def make_chime(session: Session, *, kind: ChimeKind = ChimeKind.attention) -> Chime:
    blob = make_blob(session, duration_ms=1500)
    chime = Chime(
        key=f"test-{next(_counter)}", name="测试提示音", kind=kind, blob_sha256=blob.sha256, duration_ms=1500
    )
    session.add(chime)
    session.flush()
    return chime


def make_bulletin(
    session: Session, *, text: str = "{village}的村民请注意。", fields: list[str] | None = None
) -> Bulletin:
    bulletin = Bulletin(title="测试文字稿", text=text, custom_fields=fields or [])
    session.add(bulletin)
    session.flush()
    return bulletin


def playlist_body(items: list[dict[str, Any]], *, name: str | None = None, repeat: int = 1) -> dict[str, Any]:
    return {
        "name": name or f"节目单{next(_counter)}",
        "description": "测试",
        "items": items,
        "repeat": repeat,
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Like the shared one, but the audio store lives in the test's own directory."""
    return Settings(
        data_dir=tmp_path / "data",
        audio_store_dir=tmp_path / "store",
        secret_key=TEST_SECRET,
        render_workers=0,
    )


@pytest.fixture
def store(settings: Settings) -> AudioStore:
    return get_store(settings)


def recording(dest: Path, *, seconds: float, frequency: float = 330.0, rate: int = 8000) -> Path:
    """A speech-like test recording: a tone whose level swells three times a second."""
    source = f"sine=frequency={frequency}:duration={seconds}:sample_rate={rate}"
    swell = "volume='0.15+0.12*sin(2*PI*3*t)':eval=frame"
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-af", swell, "-ac", "1"]
    subprocess.run([*argv, str(dest)], check=True, timeout=60)
    return dest


def stored_clip(session: Session, *, store: AudioStore, settings: Settings, source: Path) -> Clip:
    blob = ingest_audio(session, store=store, source=source, settings=settings)
    return make_clip(session, title=source.stem, blob=blob)


@dataclass
class AudioWorld:
    """An app on SQLite with render workers running, a small city and a propagandist."""

    client: TestClient
    app: FastAPI
    engine: Engine
    headers: dict[str, str]
    village_codes: list[str]


@pytest.fixture
def audio_world(settings: Settings, sqlite_engine: Engine) -> Iterator[AudioWorld]:
    from broadcast.app import create_app

    with Session(sqlite_engine, expire_on_commit=False) as session:
        city = builders.small_city(session)
        user = builders.make_user(session, role=Role.propagandist)
        session.commit()
        headers, codes = bearer(user), [v.code for v in city.villages]
    # The server's own lifespan starts the render workers, as in production.
    app = create_app(
        settings.model_copy(update={"render_workers": 1}), engine=sqlite_engine, upgrade_db=False
    )
    with TestClient(app) as client:
        yield AudioWorld(client=client, app=app, engine=sqlite_engine, headers=headers, village_codes=codes)
