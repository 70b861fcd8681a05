"""Campaigns (宣传计划), per-village quiet hours, and the materialized rundown (播出单) slots."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.clock import utc_now
from broadcast.models_base import Timestamped, enum_field


class CampaignStatus(StrEnum):
    draft = "draft"  # 草稿
    submitted = "submitted"  # 待审批
    approved = "approved"  # 已批准 (plays once its season starts)
    active = "active"  # 播出中
    paused = "paused"  # 已暂停
    ended = "ended"  # 已结束


class Campaign(Timestamped, table=True):
    """A playlist revision + a target + a season + a recurrence + a priority.

    The recurrence is stored as RFC 5545 parts (DTSTART, RRULE, RDATE, EXDATE); ``key`` is the
    stable name the ``schedules/`` files use to create-or-update.
    """

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("key"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64)
    name: str = Field(max_length=128)
    description: str = Field(default="", max_length=1000)
    playlist_id: int = Field(foreign_key="playlists.id", index=True, ondelete="RESTRICT")
    revision_id: int = Field(foreign_key="playlist_revisions.id", index=True, ondelete="RESTRICT")
    selector: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    season_start: date
    season_end: date
    dtstart: datetime
    rrule: str | None = Field(default=None, max_length=500)
    rdates: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    exdates: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    exception_dates: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    windows: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    priority: int = Field(default=5, ge=1, le=9)
    max_plays_per_day: int = Field(default=3, ge=1, le=48)
    field_values: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: CampaignStatus = enum_field(CampaignStatus, CampaignStatus.draft, index=True)
    version: int = Field(default=1, description="bumped on every change; approvals name a version")
    created_by: int | None = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
    submitted_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    submitted_at: datetime | None = None
    approved_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    approved_at: datetime | None = None


class VillageQuietHours(SQLModel, table=True):
    """A village's own quiet hours (静默时段); villages without a row use the city default."""

    __tablename__ = "village_quiet_hours"

    village_id: int = Field(foreign_key="villages.id", primary_key=True, ondelete="CASCADE")
    start: str = Field(max_length=5, description="local HH:MM")
    end: str = Field(max_length=5, description="local HH:MM; before start means it crosses midnight")
    updated_at: datetime = Field(default_factory=utc_now)


class SlotStatus(StrEnum):
    planned = "planned"
    dropped = "dropped"


class RundownSlot(SQLModel, table=True):
    """One planned (or dropped, with the reason) play of a campaign on an endpoint.

    Unique on (endpoint, campaign, occurrence): re-materializing updates, never duplicates.
    """

    __tablename__ = "rundown_slots"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "campaign_id", "occurrence_at"),
        Index("ix_rundown_slots_endpoint_starts", "endpoint_id", "starts_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="endpoints.id", ondelete="CASCADE")
    campaign_id: int = Field(foreign_key="campaigns.id", index=True, ondelete="CASCADE")
    revision_id: int = Field(foreign_key="playlist_revisions.id", ondelete="RESTRICT")
    occurrence_at: datetime
    starts_at: datetime = Field(index=True)
    ends_at: datetime
    status: SlotStatus = enum_field(SlotStatus, SlotStatus.planned, index=True)
    moved: bool = False
    bumped_by: int | None = Field(default=None, description="campaign id that bumped or dropped it")
    reason: str | None = Field(default=None, max_length=32)
    detail: str | None = Field(default=None, max_length=500)
    updated_at: datetime = Field(default_factory=utc_now)


class Lease(SQLModel, table=True):
    """A named lease in the database: the scheduler's leader lock when there is no Redis.

    The holder renews ``expires_at`` while it runs; a stand-by takes the lease over only after it
    has expired, so a crashed leader is replaced within one lease period.
    """

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: datetime
