"""The recorded clips (录音素材) an alert may play, as the alert desk shows them.

The compose form lists the library's clips whose audio is in the store (a clip row exists only
once its upload was checked and transcoded, so the file is all that can be missing); the alert's
page names the clip it plays. Whether a chosen clip may be played is decided by the alert
service, for the console and the API alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from broadcast.alerts.models import Alert
from broadcast.content import service as clips
from broadcast.content.models import Clip
from broadcast.content.schemas import audio_url
from broadcast.content.store import AudioStore
from broadcast.pagination import MAX_LIMIT, PageParams

NEWEST = PageParams(limit=MAX_LIMIT, offset=0)


@dataclass(frozen=True)
class ClipChoice:
    id: int
    title: str
    tags: list[str]
    original_name: str
    duration_ms: int
    audio_url: str

    @classmethod
    def of(cls, clip: Clip) -> ClipChoice:
        return cls(
            id=clip.id or 0,
            title=clip.title,
            tags=list(clip.tags),
            original_name=clip.original_name,
            duration_ms=clip.duration_ms,
            audio_url=audio_url(clip.blob_sha256),
        )

    @property
    def search_text(self) -> str:
        """What the form's search box matches: title, tags and the uploaded file's name."""
        return " ".join([self.title, *self.tags, self.original_name]).lower()


@dataclass(frozen=True)
class ClipChoices:
    """The newest clips that can be played, and what was left out and why."""

    items: list[ClipChoice]
    missing_audio: int
    total: int

    @property
    def more(self) -> int:
        """Clips older than the newest NEWEST.limit, not listed."""
        return max(0, self.total - NEWEST.limit)

    def named(self, clip_id: str) -> ClipChoice | None:
        return next((clip for clip in self.items if str(clip.id) == clip_id), None)


def clip_choices(session: Session, store: AudioStore) -> ClipChoices:
    total, rows = clips.list_clips(session, q=None, tag=None, params=NEWEST)
    usable = [ClipChoice.of(clip) for clip in rows if store.exists(clip.blob_sha256)]
    return ClipChoices(items=usable, missing_audio=len(rows) - len(usable), total=total)


def played_clip(session: Session, alert: Alert) -> ClipChoice | None:
    """The clip a clip alert plays (alerts keep their clip: it cannot be deleted from under them)."""
    return ClipChoice.of(session.get_one(Clip, alert.clip_id)) if alert.clip_id is not None else None
