"""An alert's audio: the attention chime, then the message (spoken by the offline engine, or a clip).

Alerts never depend on the network: the text is spoken by the first *offline* engine configured
(espeak), whatever a bulletin would use. A drill is framed by spoken words on both sides, so
nobody who hears only part of it mistakes it for a real alert. The program is made when the
alert is drafted: sending never waits for TTS.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from broadcast.bulletins import textnorm
from broadcast.bulletins.tts.cache import speak
from broadcast.config import Settings
from broadcast.content.chimes import ensure_builtin_chimes
from broadcast.content.models import AudioBlob, ChimeKind, Clip
from broadcast.content.store import AudioStore, ingest_audio
from broadcast.errors import Invalid
from broadcast.playlists.models import ItemKind
from broadcast.playlists.renderer import ItemSource, build_program

DRILL_OPENING = "现在进行应急演练。以下是演练信息。"
DRILL_CLOSING = "以上是演练信息，不是真实预警。演练。"
# The offline engine only, at its normal speed: an alert must not depend on the network.
ALERT_ENGINES = ["espeak"]
ALERT_RATE = 100
GAP_MS = 600


@dataclass(frozen=True)
class Spoken:
    """What the speaker will say, in the words a person reads in the console."""

    text: str
    drill: bool

    @property
    def full(self) -> str:
        return f"{DRILL_OPENING}{self.text}{DRILL_CLOSING}" if self.drill else self.text


def _speech(session: Session, text: str, *, store: AudioStore, settings: Settings) -> AudioBlob:
    spoken = textnorm.normalize(text)
    if not textnorm.has_readable(spoken):
        raise Invalid("预警文本没有可朗读的内容：请写出要广播的文字", details={"text": text})
    return speak(
        session,
        text=spoken,
        engines=ALERT_ENGINES,
        voice=None,
        rate=ALERT_RATE,
        store=store,
        settings=settings,
    ).blob


def _attention_chime(session: Session, *, store: AudioStore, settings: Settings) -> str:
    chimes = ensure_builtin_chimes(session, store=store, settings=settings)
    return next(chime.blob_sha256 for chime in chimes if chime.kind == ChimeKind.attention)


def make_program(
    session: Session,
    *,
    text: str | None,
    clip: Clip | None,
    drill: bool,
    store: AudioStore,
    settings: Settings,
) -> AudioBlob:
    """The alert's program in the house format: chime, (drill opening), message, (drill closing)."""
    parts: list[tuple[ItemKind, str]] = [
        (ItemKind.chime, _attention_chime(session, store=store, settings=settings))
    ]
    if clip is not None:
        if drill:
            parts.append(
                (ItemKind.bulletin, _speech(session, DRILL_OPENING, store=store, settings=settings).sha256)
            )
        parts.append((ItemKind.clip, clip.blob_sha256))
        if drill:
            parts.append(
                (ItemKind.bulletin, _speech(session, DRILL_CLOSING, store=store, settings=settings).sha256)
            )
    else:
        full = Spoken(text or "", drill).full
        parts.append((ItemKind.bulletin, _speech(session, full, store=store, settings=settings).sha256))
    sources: list[ItemSource] = []
    for kind, sha in parts:
        if sources:
            sources.append(ItemSource(len(sources), ItemKind.silence, None, 1, silence_ms=GAP_MS))
        sources.append(ItemSource(len(sources), kind, None, 1, audio_sha256=sha))
    return _render(session, sources, store=store, settings=settings)


def make_speech_program(session: Session, *, text: str, store: AudioStore, settings: Settings) -> AudioBlob:
    """A short spoken program (the all-clear): chime, then the text."""
    return make_program(session, text=text, clip=None, drill=False, store=store, settings=settings)


def _render(
    session: Session, sources: list[ItemSource], *, store: AudioStore, settings: Settings
) -> AudioBlob:
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="alert-", dir=store.tmp_dir) as workdir:
        _plan, wav = build_program(
            sources,
            playlist_repeat=1,
            path_for=store.path_for,
            workdir=Path(workdir),
            settings=settings,
            progress=lambda _message: None,
        )
        return ingest_audio(session, store=store, source=wav, settings=settings)
