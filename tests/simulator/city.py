"""A tiny city for the simulator test: endpoints with tokens and one campaign with a rendered program."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlmodel import Session

from broadcast.auth.audit import CLI
from broadcast.content.models import AudioBlob
from broadcast.content.store import AudioStore
from broadcast.db import make_engine
from broadcast.dispatch.device_auth import provision_tokens
from broadcast.playlists.models import Playlist, PlaylistRevision, Render, RenderStatus
from broadcast.playlists.renders import context_key
from broadcast.scheduling.models import Campaign, CampaignStatus
from tests import builders

PROGRAM_MS = 2000


@dataclass(frozen=True)
class Seeded:
    tokens: list[str]
    endpoint_ids: list[int]
    sha256: str


def _program(session: Session, store: AudioStore) -> tuple[AudioBlob, Campaign]:
    """A stored program file (bytes need not be audio to be served) rendered for the empty context."""
    sha = store.put_bytes(os.urandom(8192))
    blob = AudioBlob(
        sha256=sha, size_bytes=8192, duration_ms=PROGRAM_MS, sample_rate=48000, channels=1, codec="mp3"
    )
    playlist = Playlist(name="森林防火广播")
    session.add_all([blob, playlist])
    session.flush()
    revision = PlaylistRevision(playlist_id=playlist.id or 0, number=1)
    session.add(revision)
    session.flush()
    session.add(
        Render(
            revision_id=revision.id or 0,
            context_key=context_key({}),
            context={},
            status=RenderStatus.done,
            blob_sha256=sha,
            duration_ms=PROGRAM_MS,
        )
    )
    campaign = Campaign(
        key="sim",
        name="模拟宣传",
        playlist_id=playlist.id or 0,
        revision_id=revision.id or 0,
        season_start=date(2020, 1, 1),
        season_end=date(2099, 12, 31),
        dtstart=datetime.fromisoformat("2026-01-01T08:00:00+08:00"),
        status=CampaignStatus.active,
    )
    session.add(campaign)
    session.flush()
    return blob, campaign


def seed_city(database_url: str, store_dir: Path, *, endpoints: int) -> Seeded:
    """``endpoints`` speakers in one village, each with a token, and a campaign with a rendered program.

    Slots come later (the test adds them and announces them with a push).
    """
    engine = make_engine(database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            village = builders.make_village(session, town=builders.make_town(session))
            made = [builders.make_endpoint(session, village=village) for _ in range(endpoints)]
            blob, _campaign = _program(session, AudioStore(store_dir))
            pairs = provision_tokens(session, endpoints=made, scope="simulate-test", actor=CLI)
            session.commit()
            return Seeded([token for _, token in pairs], [e.id or 0 for e in made], blob.sha256)
    finally:
        engine.dispose()
