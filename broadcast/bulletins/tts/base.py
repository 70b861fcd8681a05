"""The one interface every TTS engine implements, and its typed errors."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from typing import Protocol

from broadcast.errors import BroadcastError


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    language: str = "zh-CN"


class TTSEngine(Protocol):
    """Synthesises speech. ``rate`` is a percentage of the engine's normal speed."""

    name: str
    online: bool

    def voices(self) -> list[Voice]: ...

    def synthesize(self, text: str, *, voice: str, rate: int) -> bytes:
        """WAV bytes for ``text``; raises one of the TTS errors below, nothing else."""
        ...


class TTSError(BroadcastError):
    """Base of the engine errors; they carry a Chinese message and an HTTP status."""


class TTSUnavailable(TTSError):
    """The engine cannot be reached or is not installed (try another engine)."""

    status_code = 503
    code = "tts_unavailable"


class TTSRateLimited(TTSError):
    """The service refused because of too many requests (try later or another engine)."""

    status_code = 429
    code = "tts_rate_limited"


class TTSFailed(TTSError):
    """The engine answered but produced no usable audio for this text."""

    status_code = 502
    code = "tts_failed"


def default_voice(engine: TTSEngine) -> str:
    return engine.voices()[0].id


def pick_voice(engine: TTSEngine, wanted: str | None) -> str:
    """The wanted voice where the engine has it, else its default (a fallback engine has its own)."""
    ids = [v.id for v in engine.voices()]
    return wanted if wanted in ids else ids[0]


def wav_from_pcm(pcm: bytes, *, sample_rate: int) -> bytes:
    """A WAV file around signed 16-bit mono PCM."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return out.getvalue()
