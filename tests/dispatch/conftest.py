"""Builders for the device tests: tokens, rendered programs in a real store, rundown slots."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import Session

from broadcast.auth.audit import CLI
from broadcast.config import Settings
from broadcast.content.models import AudioBlob
from broadcast.content.store import AudioStore, get_store
from broadcast.playlists.models import Playlist, PlaylistRevision, Render, RenderStatus
from broadcast.playlists.renders import context_key
from broadcast.regions.models import Endpoint
from broadcast.regions.tokens import issue_token
from broadcast.scheduling.models import Campaign, CampaignStatus, RundownSlot, SlotStatus
from tests import builders
from tests.conftest import TEST_SECRET

_counter = itertools.count(1)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Like the shared one, with the audio store in the test's own directory."""
    return Settings(
        data_dir=tmp_path / "data",
        audio_store_dir=tmp_path / "store",
        secret_key=TEST_SECRET,
        render_workers=0,
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    from broadcast.app import create_app

    return create_app(settings, engine=engine, upgrade_db=False)


@pytest.fixture
def store(settings: Settings) -> AudioStore:
    return get_store(settings)


@dataclass
class Device:
    endpoint: Endpoint
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_device(session: Session, endpoint: Endpoint) -> Device:
    _, secret, _ = issue_token(session, endpoint=endpoint, actor=CLI)
    return Device(endpoint=endpoint, token=secret)


@pytest.fixture
def city(session: Session) -> builders.City:
    made = builders.small_city(session)
    session.commit()
    return made


@pytest.fixture
def devices(session: Session, city: builders.City) -> list[Device]:
    """Tokens for the first two endpoints (same village)."""
    made = [make_device(session, endpoint) for endpoint in city.endpoints[:2]]
    session.commit()
    return made


def stored_program(session: Session, store: AudioStore, *, size: int = 4096) -> AudioBlob:
    """A file in the real store with its blob row (bytes need not be audio to be served)."""
    with store.temp_path() as temp:
        temp.write_bytes(os.urandom(size))
        sha = store.put(temp)
    blob = AudioBlob(
        sha256=sha, size_bytes=size, duration_ms=5000, sample_rate=48000, channels=1, codec="mp3"
    )
    session.add(blob)
    session.flush()
    return blob


def make_revision(session: Session) -> PlaylistRevision:
    playlist = Playlist(name=f"节目单{next(_counter)}")
    session.add(playlist)
    session.flush()
    revision = PlaylistRevision(playlist_id=playlist.id or 0, number=1)
    session.add(revision)
    session.flush()
    return revision


def make_render(session: Session, revision: PlaylistRevision, blob: AudioBlob | None) -> Render:
    """A render for the empty context (a revision whose bulletins use no fields)."""
    render = Render(
        revision_id=revision.id or 0,
        context_key=context_key({}),
        context={},
        status=RenderStatus.done if blob else RenderStatus.queued,
        blob_sha256=blob.sha256 if blob else None,
        duration_ms=blob.duration_ms if blob else None,
    )
    session.add(render)
    session.flush()
    return render


def make_campaign(session: Session, revision: PlaylistRevision) -> Campaign:
    n = next(_counter)
    campaign = Campaign(
        key=f"c{n}",
        name=f"宣传计划{n}",
        playlist_id=revision.playlist_id,
        revision_id=revision.id or 0,
        season_start=date(2020, 1, 1),
        season_end=date(2099, 12, 31),
        dtstart=datetime.fromisoformat("2026-01-01T08:00:00+08:00"),
        status=CampaignStatus.active,
    )
    session.add(campaign)
    session.flush()
    return campaign


def make_slot(
    session: Session,
    *,
    endpoint: Endpoint,
    campaign: Campaign,
    starts_at: datetime,
    status: SlotStatus = SlotStatus.planned,
) -> RundownSlot:
    slot = RundownSlot(
        endpoint_id=endpoint.id or 0,
        campaign_id=campaign.id or 0,
        revision_id=campaign.revision_id,
        occurrence_at=starts_at,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(seconds=5),
        status=status,
    )
    session.add(slot)
    session.flush()
    return slot
