"""Content rows without ffmpeg, and alerts that play them: what the delete checks look at."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta

from sqlmodel import Session

from broadcast.alerts.models import Alert, AlertCategory, AlertStatus
from broadcast.clock import utc_now
from broadcast.content.models import AudioBlob, Clip

_ids = itertools.count(1)


def blob(session: Session) -> str:
    sha = hashlib.sha256(f"blob-{next(_ids)}".encode()).hexdigest()
    session.add(
        AudioBlob(sha256=sha, size_bytes=1, duration_ms=3000, sample_rate=48000, channels=1, codec="mp3")
    )
    session.flush()
    return sha


def stored_clip(session: Session, title: str) -> Clip:
    clip = Clip(
        title=title,
        blob_sha256=blob(session),
        source_sha256=hashlib.sha256(f"source-{next(_ids)}".encode()).hexdigest(),
        source_format="wav",
        original_name="rec.wav",
        duration_ms=3000,
    )
    session.add(clip)
    session.flush()
    return clip


def alert_playing(session: Session, clip: Clip, title: str, status: AlertStatus = AlertStatus.draft) -> Alert:
    alert = Alert(
        request_key=f"k{next(_ids)}",
        title=title,
        clip_id=clip.id,
        level=3,
        category=AlertCategory.flood,
        drill=False,
        valid_until=utc_now() + timedelta(hours=2),
        status=status,
        program_sha256=blob(session),
        program_duration_ms=3000,
    )
    session.add(alert)
    session.flush()
    return alert
