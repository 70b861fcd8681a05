"""What became of each planned slot once it was over: the table the reconciliation job keeps.

One row per planned rundown slot that ended more than the grace period ago. It is derived data
(play events + presence history), rewritten idempotently while late uploads may still arrive,
so reports read one narrow table instead of joining the play log for every question.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from broadcast.models_base import enum_field


class Outcome(StrEnum):
    played = "played"  # a "completed" report
    partial = "partial"  # started, then interrupted (or never reported an end)
    failed = "failed"  # the device reported it could not play; ``cause`` is its reason
    missed = "missed"  # nothing reported; ``cause`` says offline or silent


class MissCause(StrEnum):
    offline = "offline"  # the speaker was offline at some point of the slot window
    silent = "silent"  # online all along, yet it reported nothing


OUTCOME_LABELS = {
    Outcome.played: "已播出",
    Outcome.partial: "部分播出",
    Outcome.failed: "播放失败",
    Outcome.missed: "未播出",
}
PENDING_LABEL = "待核对"
CAUSE_LABELS = {MissCause.offline: "离线", MissCause.silent: "在线未播"}


class SlotOutcome(SQLModel, table=True):
    __tablename__ = "slot_outcomes"
    __table_args__ = (
        Index("ix_slot_outcomes_starts", "starts_at"),
        Index("ix_slot_outcomes_village_starts", "village_id", "starts_at"),
        Index("ix_slot_outcomes_campaign_starts", "campaign_id", "starts_at"),
        Index("ix_slot_outcomes_endpoint_starts", "endpoint_id", "starts_at"),
    )

    slot_id: int = Field(foreign_key="rundown_slots.id", primary_key=True, ondelete="CASCADE")
    endpoint_id: int = Field(foreign_key="endpoints.id", ondelete="CASCADE")
    village_id: int = Field(foreign_key="villages.id", ondelete="CASCADE")
    campaign_id: int = Field(foreign_key="campaigns.id", ondelete="CASCADE")
    starts_at: datetime
    ends_at: datetime
    outcome: Outcome = enum_field(Outcome)
    cause: str | None = Field(
        default=None, max_length=255, description="offline/silent, or the device's reason"
    )
    offline_since: datetime | None = Field(
        default=None, description="for offline misses: when it went offline"
    )
    started_at: datetime | None = None
    completed_at: datetime | None = None
    checked_at: datetime
