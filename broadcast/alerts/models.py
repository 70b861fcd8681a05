"""Urgent alerts (紧急插播) and their per-endpoint delivery records.

An alert is drafted (its audio is made at once, so sending never waits for TTS), confirmed
against the reach the officer saw, approved when its level requires it, then sent: the alert,
one delivery row per endpoint and the signed push go into the database in one transaction and
leave through the outbox. Updates bump ``revision``; a device plays each (alert, revision) at
most once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.models_base import Timestamped, enum_field


class AlertCategory(StrEnum):
    forest_fire = "forest_fire"
    flood = "flood"
    geological = "geological"
    severe_weather = "severe_weather"
    drowning = "drowning"
    road_traffic = "road_traffic"
    hazardous_chemicals = "hazardous_chemicals"
    fire = "fire"
    gas = "gas"
    public_health = "public_health"
    other = "other"


CATEGORY_LABELS = {
    AlertCategory.forest_fire: "森林火灾",
    AlertCategory.flood: "山洪/洪涝",
    AlertCategory.geological: "地质灾害",
    AlertCategory.severe_weather: "气象灾害",
    AlertCategory.drowning: "防溺水",
    AlertCategory.road_traffic: "道路交通",
    AlertCategory.hazardous_chemicals: "危险化学品",
    AlertCategory.fire: "火灾",
    AlertCategory.gas: "燃气",
    AlertCategory.public_health: "公共卫生",
    AlertCategory.other: "其他",
}

# Level 1 is the most severe (I, red); a device never lets a larger number interrupt a smaller one.
LEVEL_NAMES = {1: "I级（红色）", 2: "II级（橙色）", 3: "III级（黄色）", 4: "IV级（蓝色）"}
LEVEL_COLOURS = {1: "red", 2: "orange", 3: "yellow", 4: "blue"}


class AlertStatus(StrEnum):
    draft = "draft"  # composed, audio made, not sent
    awaiting_approval = "awaiting_approval"  # confirmed; its level needs a second person
    active = "active"  # sent, valid, not cancelled
    cancelled = "cancelled"
    expired = "expired"
    discarded = "discarded"  # a draft nobody sent


STATUS_LABELS = {
    AlertStatus.draft: "草稿",
    AlertStatus.awaiting_approval: "待审批",
    AlertStatus.active: "播发中",
    AlertStatus.cancelled: "已解除",
    AlertStatus.expired: "已过期",
    AlertStatus.discarded: "已作废",
}


class AlertSource(StrEnum):
    console = "console"
    cap = "cap"


class CapAction(StrEnum):
    """What an imported CAP message became on the desk."""

    draft = "draft"
    update = "update"
    cancel = "cancel"


class Alert(Timestamped, table=True):
    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("created_by", "request_key"),
        Index("ix_alerts_cap", "cap_sender", "cap_identifier"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_key: str = Field(
        max_length=64, description="the client's idempotency key: a retry is the same alert"
    )
    title: str = Field(max_length=64)
    text: str | None = Field(default=None, max_length=1000)
    clip_id: int | None = Field(default=None, foreign_key="clips.id", ondelete="RESTRICT", index=True)
    level: int = Field(ge=1, le=4, index=True)
    category: AlertCategory = enum_field(AlertCategory)
    drill: bool = Field(index=True)
    selector: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    repeat: int = Field(default=2, ge=1, le=10)
    valid_until: datetime
    status: AlertStatus = enum_field(AlertStatus, AlertStatus.draft, index=True)
    revision: int = 1
    program_sha256: str = Field(foreign_key="audio_blobs.sha256", max_length=64)
    program_duration_ms: int
    all_clear_text: str | None = Field(default=None, max_length=500)
    all_clear_sha256: str | None = Field(default=None, foreign_key="audio_blobs.sha256", max_length=64)
    reach: int | None = Field(default=None, description="endpoints reached, fixed when it was confirmed")
    source: AlertSource = enum_field(AlertSource, AlertSource.console)
    cap_sender: str | None = Field(default=None, max_length=255)
    cap_identifier: str | None = Field(default=None, max_length=255)
    cap_polygons: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: int | None = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
    confirmed_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    confirmed_at: datetime | None = None
    approved_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    approved_at: datetime | None = None
    break_glass_reason: str | None = Field(default=None, max_length=500)
    sent_at: datetime | None = Field(default=None, index=True)
    updated_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    cancelled_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    cancelled_at: datetime | None = None
    cancel_reason: str | None = Field(default=None, max_length=500)


class DeliveryState(StrEnum):
    sent = "sent"  # published to its gateway (or waiting for the device to come back)
    delivered = "delivered"  # the device verified and acknowledged it
    playing = "playing"
    completed = "completed"
    interrupted = "interrupted"  # a more severe alert or a cancel cut it short
    failed = "failed"


# A delivery only moves forward: an ack arriving after "playing" changes nothing.
DELIVERY_RANK = {
    DeliveryState.sent: 0,
    DeliveryState.delivered: 1,
    DeliveryState.playing: 2,
    DeliveryState.interrupted: 3,
    DeliveryState.failed: 3,
    DeliveryState.completed: 4,
}

DELIVERY_LABELS = {
    DeliveryState.sent: "已发送",
    DeliveryState.delivered: "已送达",
    DeliveryState.playing: "播放中",
    DeliveryState.completed: "已播完",
    DeliveryState.interrupted: "被中断",
    DeliveryState.failed: "失败",
}


class AlertDelivery(SQLModel, table=True):
    """One endpoint's copy of one alert: what reached it and what it did, with the times."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_endpoint", "endpoint_id", "alert_id"),)

    alert_id: int = Field(foreign_key="alerts.id", primary_key=True, ondelete="CASCADE")
    endpoint_id: int = Field(foreign_key="endpoints.id", primary_key=True, ondelete="CASCADE")
    state: DeliveryState = enum_field(DeliveryState, DeliveryState.sent)
    online_at_send: bool
    sent_at: datetime
    delivered_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    detail: str | None = Field(default=None, max_length=255)


class CapMessageRecord(SQLModel, table=True):
    """One CAP message we imported and the alert it became or changed.

    (sender, identifier) names a CAP message for good, so the unique key makes a repeat, or the
    same message imported by two officers at once, land on the first import's alert. The row is
    written first, as the import's claim, and ``alert_id`` is filled in the same transaction: a
    NULL never commits.
    """

    __tablename__ = "cap_messages"
    __table_args__ = (UniqueConstraint("sender", "identifier"),)

    id: int | None = Field(default=None, primary_key=True)
    sender: str = Field(max_length=255)
    identifier: str = Field(max_length=255)
    sent_at: datetime = Field(description="the message's <sent>")
    msg_type: str = Field(max_length=16, description="Alert, Update or Cancel")
    status: str = Field(max_length=16, description="Actual or Exercise")
    action: CapAction = enum_field(CapAction)
    alert_id: int | None = Field(default=None, foreign_key="alerts.id", index=True, ondelete="CASCADE")
    unmatched_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    notes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    imported_at: datetime
    imported_by: int | None = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
