"""Builders for the campaign, quiet-hours and conflict tests: playlists with (or without) a finished
render, request bodies, and an app that serves the scheduling routes."""

from __future__ import annotations

import itertools
from typing import Any

from sqlmodel import Session, select

from broadcast.auth.models import AuditEntry
from broadcast.playlists.models import Playlist, PlaylistRevision, Render, RenderStatus
from broadcast.scheduling.models import Campaign

_counter = itertools.count(1)
SEASON = {"first": "2030-10-01", "last": "2031-04-30"}


def playlist_revision(
    session: Session, *, rendered: bool = True, duration_ms: int = 60_000, revisions: int = 1
) -> PlaylistRevision:
    """A playlist with ``revisions`` revisions; the newest has a finished render unless not ``rendered``."""
    n = next(_counter)
    playlist = Playlist(name=f"测试节目单{n}", current_revision=revisions)
    session.add(playlist)
    session.flush()
    revision = None
    for number in range(1, revisions + 1):
        revision = PlaylistRevision(playlist_id=playlist.id or 0, number=number)
        session.add(revision)
        session.flush()
    assert revision is not None
    if rendered:
        session.add(
            Render(
                revision_id=revision.id or 0,
                context_key=f"ctx-{n}",
                status=RenderStatus.done,
                duration_ms=duration_ms,
            )
        )
        session.flush()
    return revision


def campaign_body(playlist_id: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"森林防火{next(_counter)}",
        "playlist_id": playlist_id,
        "selector": {"all": True},
        "season": SEASON,
        "recurrence": {"preset": "daily", "times": ["06:40", "12:10", "18:20"]},
    }
    body.update(overrides)
    return body


def campaign_count(session: Session) -> int:
    session.expire_all()
    return len(session.exec(select(Campaign)).all())


def audit_actions(session: Session, entity_type: str = "campaign") -> list[str]:
    session.expire_all()
    query = select(AuditEntry).where(AuditEntry.entity_type == entity_type).order_by(AuditEntry.id)  # type: ignore[arg-type]
    return [entry.action for entry in session.exec(query).all()]
