"""An alert's audio: the attention chime, then the message (spoken by the offline engine, or a clip).

Alerts never depend on the network: the text is spoken by the offline engine (espeak), whatever
a bulletin would use. A drill is framed by spoken words on both sides, so
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
from broadcast.content.audio import run
from broadcast.content.chimes import ensure_builtin_chimes
from broadcast.content.models import AudioBlob, ChimeKind, Clip
from broadcast.content.store import AudioStore, store_house_file
from broadcast.errors import Invalid
from broadcast.playlists.renderer import RenderFailed

DRILL_OPENING = "现在进行应急演练。以下是演练信息。"
DRILL_CLOSING = "以上是演练信息，不是真实预警。演练。"
# The offline engine only, at its normal speed: an alert must not depend on the network.
ALERT_ENGINES = ["espeak"]
ALERT_RATE = 100


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
    parts = [_attention_chime(session, store=store, settings=settings)]
    if clip is not None:
        if drill:
            parts.append(_speech(session, DRILL_OPENING, store=store, settings=settings).sha256)
        parts.append(clip.blob_sha256)
        if drill:
            parts.append(_speech(session, DRILL_CLOSING, store=store, settings=settings).sha256)
    else:
        parts.append(_speech(session, Spoken(text or "", drill).full, store=store, settings=settings).sha256)
    return _join(session, parts, store=store, settings=settings)


def _join(session: Session, parts: list[str], *, store: AudioStore, settings: Settings) -> AudioBlob:
    """Stream-copy the parts back to back (one quick ffmpeg run, no re-encoding).

    Every part is already in the house format at the house loudness, so the program is too;
    decoding and normalising again would only cost the duty officer seconds.
    """
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="alert-", dir=store.tmp_dir) as workdir:
        listing = Path(workdir) / "parts.txt"
        listing.write_text("".join(f"file '{store.path_for(sha)}'\n" for sha in parts))
        joined = Path(workdir) / "program.mp3"
        argv = [
            "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-protocol_whitelist", "file,pipe",
            "-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0:a:0", "-c", "copy",
            "-map_metadata", "-1", "-write_xing", "0", "-id3v2_version", "0", "-y", str(joined),
        ]  # fmt: skip
        result = run(argv, timeout_s=settings.ffmpeg_timeout_s)
        if result.returncode != 0:
            raise RenderFailed(
                "预警音频拼接失败：请稍后重试；若反复出现，请检查音频存储",
                details={"ffmpeg": result.stderr.strip()[-500:]},
            )
        blobs = [session.get_one(AudioBlob, sha) for sha in parts]
        peaks = [blob.true_peak_dbtp for blob in blobs if blob.true_peak_dbtp is not None]
        return store_house_file(
            session,
            store=store,
            path=joined,
            settings=settings,
            loudness_lufs=settings.loudness_target_lufs,
            true_peak_dbtp=max(peaks) if peaks else None,
        )
