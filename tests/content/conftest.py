"""Generated audio fixtures (ffmpeg, sox for AMR-NB) and an app on SQLite for the audio tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from broadcast.auth.models import Role, User
from broadcast.config import Settings
from tests import builders
from tests.conftest import TEST_SECRET, bearer

# Speech-like: pink noise shaped into 4 "syllables" a second.
SPEECH = "anoisesrc=c=pink:a={amp}:seed=7:d={seconds},tremolo=f=4:d=0.8,lowpass=f=3500"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=60)


def make_speech(path: Path, *, seconds: float, amp: float = 0.1, codec: tuple[str, ...] = ()) -> Path:
    """A mono speech-like recording; the codec arguments pick the format (default: WAV)."""
    ffmpeg("-f", "lavfi", "-i", SPEECH.format(amp=amp, seconds=seconds), "-ar", "44100", *codec, str(path))
    return path


def make_amr(path: Path, *, seconds: float) -> Path:
    """AMR-NB as phones record it. Debian's ffmpeg only decodes AMR, so sox (libopencore) encodes."""
    wav = path.with_suffix(".8k.wav")
    ffmpeg("-f", "lavfi", "-i", SPEECH.format(amp=0.1, seconds=seconds), "-ar", "8000", "-ac", "1", str(wav))
    subprocess.run(["sox", str(wav), "-t", "amr-nb", "-C", "7", str(path)], check=True, timeout=60)
    return path


def make_six_hours(path: Path) -> Path:
    """Six hours of silence without encoding six hours: one 2 s CBR MP3 (no Xing header, no ID3)
    repeated; ffprobe estimates the duration from the bit rate (21.6 MB)."""
    one = path.with_suffix(".one.mp3")
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "2", "-c:a", "libmp3lame", "-b:a", "8k",
           "-write_xing", "0", "-id3v2_version", "0", str(one))  # fmt: skip
    frames = one.read_bytes()
    path.write_bytes(frames * (6 * 3600 * 8000 // 8 // len(frames) + 1))
    return path


FORMATS: dict[str, tuple[str, ...]] = {
    "wav": ("-c:a", "pcm_s16le"),
    "mp3": ("-c:a", "libmp3lame", "-b:a", "96k"),
    "ogg": ("-ar", "48000", "-c:a", "libopus", "-b:a", "48k", "-f", "ogg"),
    "m4a": ("-c:a", "aac", "-b:a", "96k", "-f", "ipod"),
    "flac": ("-c:a", "flac"),
}


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def recordings(audio_dir: Path) -> dict[str, Path]:
    """One 3 s speech-like recording per accepted format."""
    made = {
        name: make_speech(audio_dir / f"rec.{name}", seconds=3, codec=codec)
        for name, codec in FORMATS.items()
    }
    made["amr"] = make_amr(audio_dir / "rec.amr", seconds=3)
    return made


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The shared settings plus a store inside the test's tmp dir (never the repo's audio_assets)."""
    return Settings(
        data_dir=tmp_path / "data",
        audio_store_dir=tmp_path / "store",
        secret_key=TEST_SECRET,
        render_workers=0,
    )


@pytest.fixture
def lite_session(sqlite_engine: Engine) -> Iterator[Session]:
    with Session(sqlite_engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def lite_users(lite_session: Session) -> dict[Role, User]:
    made = {role: builders.make_user(lite_session, role=role) for role in Role}
    lite_session.commit()
    return made


@pytest.fixture
def lite_headers(lite_users: dict[Role, User]) -> dict[Role, dict[str, str]]:
    return {role: bearer(user) for role, user in lite_users.items()}


@pytest.fixture
def lite_app(settings: Settings, sqlite_engine: Engine) -> FastAPI:
    from broadcast.app import create_app

    return create_app(settings, engine=sqlite_engine, upgrade_db=False)


@pytest.fixture
def lite_client(lite_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(lite_app) as client:
        yield client


def stored_files(settings: Settings) -> list[Path]:
    """Every file below the store, temp files included."""
    root = settings.store_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
