"""Device API bodies (docs/device-protocol.md) and the signing-key views."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from broadcast.dispatch.models import PlayEventType

MAX_EVENTS = 500


class DeviceEvent(BaseModel):
    """One play event as a device reports it; validated one by one so a bad one rejects only itself."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$", description="设备生成的唯一编号，如 uuid4")
    type: PlayEventType
    at: AwareDatetime
    slot_id: int | None = Field(default=None, ge=1)
    program_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    position_ms: int | None = Field(default=None, ge=0, le=2**31 - 1)
    reason: str | None = Field(default=None, max_length=255)


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
