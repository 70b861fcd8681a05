"""Device API bodies (docs/device-protocol.md) and the signing-key views."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from broadcast.dispatch.models import PlayEventType

MAX_EVENTS = 500


class DeviceEvent(BaseModel):
    """One play event as a device reports it; validated one by one so a bad one rejects only itself."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$", description="设备生成的唯一编号，如 uuid4")
    type: PlayEventType
    at: AwareDatetime
    slot_id: int | None = Field(default=None, ge=1)
    alert_id: int | None = Field(
        default=None, ge=1, description="紧急插播的事件：预警编号（与 slot_id 二选一）"
    )
    alert_revision: int | None = Field(default=None, ge=1)
    program_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    position_ms: int | None = Field(default=None, ge=0, le=2**31 - 1)
    reason: str | None = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def _slot_or_alert(self) -> DeviceEvent:
        if self.slot_id is not None and self.alert_id is not None:
            raise ValueError("slot_id 与 alert_id 只能填一个：一次播放要么是播出时段，要么是紧急插播")
        if self.alert_revision is not None and self.alert_id is None:
            raise ValueError("alert_revision 需与 alert_id 一起填写")
        return self


class AlertsDocument(BaseModel):
    envelopes: list[dict[str, Any]] = Field(
        description="签名的 alert / cancel 消息（与推送相同的信封），按级别从高到低"
    )


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(min_length=1, description=f"1 至 {MAX_EVENTS} 条播放事件")


class RejectedEvent(BaseModel):
    index: int
    id: str | None
    code: str
    message: str


class EventsResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[RejectedEvent]


class PublicKeyOut(BaseModel):
    kid: str
    alg: str = "Ed25519"
    public_key: str = Field(description="raw 32-byte Ed25519 public key, base64url without padding")
    active: bool
    created_at: datetime
    retired_at: datetime | None


class PublishedKeys(BaseModel):
    keys: list[PublicKeyOut]


class SigningKeyOut(PublicKeyOut):
    published: bool = Field(description="devices are still given this key")
