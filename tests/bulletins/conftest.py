"""Fixtures for bulletins and TTS: test engines behind the real registry, and a private store."""

from __future__ import annotations

import io
import math
import struct
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from broadcast.bulletins.tts import registry
from broadcast.bulletins.tts.base import TTSEngine, TTSUnavailable, Voice
from broadcast.config import Settings
from broadcast.content.store import AudioStore, get_store
from tests.conftest import TEST_SECRET


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


@pytest.fixture
def audio_session(sqlite_engine: Engine) -> Iterator[Session]:
    """A session for tests whose subject is audio, not SQL (SQLite only)."""
    with Session(sqlite_engine, expire_on_commit=False) as session:
        yield session


def tone_wav(seconds: float = 0.6, *, frequency: float = 440.0, rate: int = 16000) -> bytes:
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * frequency * i / rate)))
        for i in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return out.getvalue()


def tone_mp3(seconds: float = 0.5) -> bytes:
    argv = ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi"]
    argv += ["-i", f"sine=frequency=440:duration={seconds}"]
    argv += ["-ac", "1", "-ar", "24000", "-f", "mp3", "pipe:1"]
    return subprocess.run(argv, capture_output=True, check=True, timeout=30).stdout


class ToneEngine:
    """Deterministic speech: a tone whose pitch depends on the text; counts its calls."""

    online = False

    def __init__(self, name: str = "tone") -> None:
        self.name = name
        self.calls: list[tuple[str, str, int]] = []

    def voices(self) -> list[Voice]:
        return [Voice(id="beep", name="测试音"), Voice(id="boop", name="测试音二")]

    def synthesize(self, text: str, *, voice: str, rate: int) -> bytes:
        self.calls.append((text, voice, rate))
        return tone_wav(frequency=300 + sum(map(ord, text)) % 500)


class BrokenEngine:
    """An online engine whose service cannot be reached."""

    online = True

    def __init__(self, name: str = "broken") -> None:
        self.name = name
        self.calls = 0

    def voices(self) -> list[Voice]:
        return [Voice(id="x", name="不可用")]

    def synthesize(self, text: str, *, voice: str, rate: int) -> bytes:
        self.calls += 1
        raise TTSUnavailable("测试：服务不可达")


class CountingEngine:
    """Wraps a real engine and counts synthesis calls."""

    def __init__(self, inner: TTSEngine) -> None:
        self.inner = inner
        self.name = inner.name
        self.online = inner.online
        self.calls = 0

    def voices(self) -> list[Voice]:
        return self.inner.voices()

    def synthesize(self, text: str, *, voice: str, rate: int) -> bytes:
        self.calls += 1
        return self.inner.synthesize(text, voice=voice, rate=rate)


@pytest.fixture
def tone(monkeypatch: pytest.MonkeyPatch) -> ToneEngine:
    engine = ToneEngine()
    monkeypatch.setitem(registry.FACTORIES, "tone", lambda _settings: engine)
    return engine


@pytest.fixture
def broken(monkeypatch: pytest.MonkeyPatch) -> BrokenEngine:
    engine = BrokenEngine()
    monkeypatch.setitem(registry.FACTORIES, "broken", lambda _settings: engine)
    return engine


@pytest.fixture
def counting_espeak(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> CountingEngine:
    engine = CountingEngine(registry.get_engine("espeak", settings=settings))
    monkeypatch.setitem(registry.FACTORIES, "espeak", lambda _settings: engine)
    return engine
