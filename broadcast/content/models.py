"""Audio blobs (the content-addressed store's index), clips, chimes, bulletins and the TTS cache."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.clock import utc_now
from broadcast.models_base import Timestamped, enum_field


class AudioBlob(SQLModel, table=True):
    """One file in the house format, named by the sha256 of its bytes."""

    __tablename__ = "audio_blobs"

    sha256: str = Field(primary_key=True, max_length=64)
    size_bytes: int
    duration_ms: int
    sample_rate: int
    channels: int
    codec: str = Field(max_length=16)
    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None
    created_at: datetime = Field(default_factory=utc_now)


class Clip(Timestamped, table=True):
    """An uploaded recording (录音素材), transcoded to the house format."""

    __tablename__ = "clips"
    __table_args__ = (UniqueConstraint("source_sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=128, index=True)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    blob_sha256: str = Field(foreign_key="audio_blobs.sha256", index=True, max_length=64)
    source_sha256: str = Field(
        max_length=64, description="sha256 of the uploaded bytes: same upload, same clip"
    )
    source_format: str = Field(max_length=32)
    original_name: str = Field(max_length=255)
    duration_ms: int
    uploaded_by: int | None = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")


class ChimeKind(StrEnum):
    attention = "attention"  # 开始提示音
    closing = "closing"  # 结束提示音


class Chime(Timestamped, table=True):
    """An attention or closing tone (提示音); the built-in ones are generated on first use."""

    __tablename__ = "chimes"
    __table_args__ = (UniqueConstraint("key"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64)
    name: str = Field(max_length=64)
    kind: ChimeKind = enum_field(ChimeKind)
    builtin: bool = True
    blob_sha256: str = Field(foreign_key="audio_blobs.sha256", index=True, max_length=64)
    duration_ms: int


class Bulletin(Timestamped, table=True):
    """A text (文字稿) spoken by a TTS engine, with template fields such as ``{village}``."""

    __tablename__ = "bulletins"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=128, index=True)
    text: str
    custom_fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    engine: str | None = Field(default=None, max_length=32, description="None: the configured fallback order")
    voice: str | None = Field(default=None, max_length=64)
    rate: int = Field(default=100, description="speaking rate in percent of the engine's normal")
    created_by: int | None = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")


class TTSCacheEntry(SQLModel, table=True):
    """Synthesised speech by (engine, voice, rate, normalised text), already in the house format."""

    __tablename__ = "tts_cache"

    key: str = Field(primary_key=True, max_length=64)
    engine: str = Field(max_length=32)
    voice: str = Field(max_length=64)
    rate: int
    text: str
    blob_sha256: str = Field(foreign_key="audio_blobs.sha256", index=True, max_length=64)
    created_at: datetime = Field(default_factory=utc_now)
