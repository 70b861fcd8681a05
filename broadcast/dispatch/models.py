"""Device-facing state: signing keys, sequence counters, presence history and play events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.clock import utc_now
from broadcast.models_base import enum_field


class SigningKey(SQLModel, table=True):
    """An Ed25519 key pair. The private half is encrypted with a key derived from the secret key.

    One key is active (signs); retired keys stay published for verification until they expire.
    """

    __tablename__ = "signing_keys"
    __table_args__ = (UniqueConstraint("kid"),)

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(max_length=32)
    public_key: str = Field(max_length=64, description="raw 32 bytes, base64url")
    private_key_encrypted: str = Field(max_length=255)
    active: bool = Field(default=False, index=True)
    created_at: datetime = Field(default_factory=utc_now)
    retired_at: datetime | None = None


class Counter(SQLModel, table=True):
    """A named monotonic counter (message sequence numbers) shared by every server process."""

    __tablename__ = "counters"

    name: str = Field(primary_key=True, max_length=64)
    value: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class PresenceState(StrEnum):
    online = "online"
    offline = "offline"


class PresenceEvent(SQLModel, table=True):
    """A change of an endpoint's connection state: lets reports tell 'offline' from 'silent'."""

    __tablename__ = "presence_events"
    __table_args__ = (Index("ix_presence_events_endpoint_at", "endpoint_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="endpoints.id", ondelete="CASCADE")
    state: PresenceState = enum_field(PresenceState)
    at: datetime = Field(default_factory=utc_now, index=True)
    address: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=64)


class PlayEventType(StrEnum):
    started = "started"
    completed = "completed"
    interrupted = "interrupted"
    failed = "failed"


class PlayEvent(SQLModel, table=True):
    """What an endpoint reports it played; written only by ``broadcast.dispatch.events``.

    On PostgreSQL the table is partitioned by month of ``occurred_at`` (migration 0006) and its
    primary key is (id, occurred_at); ``id`` alone is still unique (one identity sequence), which
    is all the ORM needs. (endpoint, ``event_id``) uniqueness lives in ``PlayEventKey``.
    ``village_id`` and ``campaign_id`` are copied at ingest from the endpoint and the slot.
    """

    __tablename__ = "play_events"
    __table_args__ = (
        Index("ix_play_events_endpoint_occurred", "endpoint_id", "occurred_at"),
        Index("ix_play_events_village_occurred", "village_id", "occurred_at"),
        Index("ix_play_events_campaign_occurred", "campaign_id", "occurred_at"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    )
    endpoint_id: int = Field(foreign_key="endpoints.id", ondelete="CASCADE")
    event_id: str = Field(max_length=64)
    type: PlayEventType = enum_field(PlayEventType)
    slot_id: int | None = Field(default=None, foreign_key="rundown_slots.id", index=True, ondelete="SET NULL")
    alert_id: int | None = Field(default=None, foreign_key="alerts.id", index=True, ondelete="SET NULL")
    alert_revision: int | None = None
    program_sha256: str | None = Field(default=None, max_length=64)
    position_ms: int | None = None
    reason: str | None = Field(default=None, max_length=255)
    village_id: int | None = Field(default=None, description="the endpoint's village when it played")
    campaign_id: int | None = Field(default=None, description="the slot's campaign, kept if the slot goes")
    occurred_at: datetime = Field(index=True)
    received_at: datetime = Field(default_factory=utc_now)


class PlayEventKey(SQLModel, table=True):
    """The idempotency ledger of the play log: one row per (endpoint, device event id) stored.

    Unpartitioned, so its primary key can be the pair; ``occurred_at`` lets retention drop the
    keys of the months it drops.
    """

    __tablename__ = "play_event_keys"

    endpoint_id: int = Field(foreign_key="endpoints.id", primary_key=True, ondelete="CASCADE")
    event_id: str = Field(primary_key=True, max_length=64)
    occurred_at: datetime = Field(index=True)


class OutboxMessage(SQLModel, table=True):
    """A broker message committed with the change it announces, published after the commit.

    ``published_at`` is set once a gateway relay has handed it to the broker; a row left
    unpublished (the process died between commit and publish) is picked up by the relay of any
    server. Publishing twice is harmless: devices drop what they already accepted.
    """

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    message: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utc_now)
    published_at: datetime | None = Field(default=None, index=True)
