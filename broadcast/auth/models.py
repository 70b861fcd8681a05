"""Users, their roles and village scopes, device tokens, login failures and the audit log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.clock import utc_now
from broadcast.models_base import Timestamped, enum_field


class Role(StrEnum):
    admin = "admin"
    propagandist = "propagandist"
    duty_officer = "duty_officer"
    village_admin = "village_admin"


ROLE_LABELS = {
    Role.admin: "系统管理员",
    Role.propagandist: "宣传人员",
    Role.duty_officer: "值班员",
    Role.village_admin: "村（社区）管理员",
}


class User(Timestamped, table=True):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("username"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64)
    display_name: str = Field(max_length=64)
    password_hash: str = Field(max_length=255)
    role: Role = enum_field(Role, index=True)
    is_active: bool = True


class UserVillage(SQLModel, table=True):
    """The villages a village admin may see. Other roles have no rows here."""

    __tablename__ = "user_villages"

    user_id: int = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    village_id: int = Field(foreign_key="villages.id", primary_key=True, index=True, ondelete="CASCADE")


class LoginFailure(SQLModel, table=True):
    """One failed login; counted per username and per address inside a sliding window."""

    __tablename__ = "login_failures"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, index=True)
    address: str = Field(max_length=64, index=True)
    at: datetime = Field(default_factory=utc_now, index=True)


class DeviceToken(SQLModel, table=True):
    """An endpoint's credential. Only the sha256 of the secret is stored; the prefix identifies it."""

    __tablename__ = "device_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="endpoints.id", index=True, ondelete="CASCADE")
    prefix: str = Field(max_length=16)
    token_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utc_now)
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utc_now, index=True)
    actor_id: int | None = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
    actor_name: str = Field(max_length=64)
    address: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=64, index=True)
    entity_type: str = Field(max_length=32, index=True)
    entity_id: str | None = Field(default=None, max_length=64, index=True)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
