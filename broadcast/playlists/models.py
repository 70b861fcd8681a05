"""Playlists (节目单), their immutable revisions and items, and rendered programs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.clock import utc_now
from broadcast.models_base import Timestamped, enum_field


class Playlist(Timestamped, table=True):
    __tablename__ = "playlists"
    __table_args__ = (UniqueConstraint("name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    description: str = Field(default="", max_length=500)
    current_revision: int = Field(default=0, description="number of the newest revision")
    created_by: int | None = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")


class PlaylistRevision(SQLModel, table=True):
    """Never updated after insert: play logs name the exact revision that played."""

    __tablename__ = "playlist_revisions"
    __table_args__ = (UniqueConstraint("playlist_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    playlist_id: int = Field(foreign_key="playlists.id", index=True, ondelete="CASCADE")
    number: int
    repeat: int = Field(default=1, ge=1)
    created_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utc_now)


class ItemKind(StrEnum):
    clip = "clip"
    bulletin = "bulletin"
    chime = "chime"
    silence = "silence"


class PlaylistItem(SQLModel, table=True):
    """One item of a revision. Foreign keys RESTRICT: a clip in use cannot be deleted."""

    __tablename__ = "playlist_items"
    __table_args__ = (UniqueConstraint("revision_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    revision_id: int = Field(foreign_key="playlist_revisions.id", index=True, ondelete="CASCADE")
    position: int
    kind: ItemKind = enum_field(ItemKind)
    clip_id: int | None = Field(default=None, foreign_key="clips.id", index=True, ondelete="RESTRICT")
    bulletin_id: int | None = Field(default=None, foreign_key="bulletins.id", index=True, ondelete="RESTRICT")
    chime_id: int | None = Field(default=None, foreign_key="chimes.id", index=True, ondelete="RESTRICT")
    silence_ms: int | None = None
    repeat: int = Field(default=1, ge=1)


class RenderStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class Render(SQLModel, table=True):
    """A revision rendered for one set of template values (a village, a date, campaign fields)."""

    __tablename__ = "renders"
    __table_args__ = (UniqueConstraint("revision_id", "context_key"),)

    id: int | None = Field(default=None, primary_key=True)
    revision_id: int = Field(foreign_key="playlist_revisions.id", index=True, ondelete="CASCADE")
    context_key: str = Field(max_length=64, description="sha256 of the canonical template values")
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: RenderStatus = enum_field(RenderStatus, RenderStatus.queued, index=True)
    error: str | None = None
    blob_sha256: str | None = Field(default=None, foreign_key="audio_blobs.sha256", max_length=64)
    manifest: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    duration_ms: int | None = None
    requested_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utc_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
