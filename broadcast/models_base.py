"""Fields shared by tables. SQLModel maps ``datetime`` to an aware-UTC column type that refuses
naive values, so every timestamp here is stored and read back as UTC."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from broadcast.clock import utc_now


class Timestamped(SQLModel):
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


def enum_field(enum_cls: type[StrEnum], default: Any = ..., *, index: bool = False) -> Any:
    """An enum stored as plain VARCHAR: adding a value later needs no PostgreSQL ``ALTER TYPE``."""
    return Field(
        default=default,
        index=index,
        sa_type=sa.Enum(enum_cls, native_enum=False, length=32, validate_strings=True),
    )
