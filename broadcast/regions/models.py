"""The city: towns (乡镇/街道), villages (行政村/社区), endpoints (前端点位), tags and saved groups."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.models_base import Timestamped, enum_field


class TownKind(StrEnum):
    town = "town"  # 乡镇
    subdistrict = "subdistrict"  # 街道


class VillageKind(StrEnum):
    village = "village"  # 行政村
    community = "community"  # 社区


class EndpointStatus(StrEnum):
    online = "online"
    offline = "offline"
    fault = "fault"
    disabled = "disabled"


TAGS = (
    "forest",
    "reservoir",
    "river",
    "school",
    "market",
    "industrial_park",
    "highway",
    "high_rise",
    "construction",
)

TAG_LABELS = {
    "forest": "林区",
    "reservoir": "水库",
    "river": "河道",
    "school": "学校",
    "market": "集市",
    "industrial_park": "工业园区",
    "highway": "公路",
    "high_rise": "高层住宅",
    "construction": "建筑工地",
}


class Town(Timestamped, table=True):
    __tablename__ = "towns"
    __table_args__ = (UniqueConstraint("code"), UniqueConstraint("name"))

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=12, description="行政区划代码 (9 digits)")
    name: str = Field(max_length=64)
    kind: TownKind = enum_field(TownKind, TownKind.town)


class Village(Timestamped, table=True):
    __tablename__ = "villages"
    __table_args__ = (UniqueConstraint("code"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=12, description="行政区划代码 (12 digits)")
    name: str = Field(max_length=64, index=True)
    kind: VillageKind = enum_field(VillageKind, VillageKind.village)
    town_id: int = Field(foreign_key="towns.id", index=True, ondelete="RESTRICT")


class Endpoint(Timestamped, table=True):
    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("code"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32)
    name: str = Field(max_length=128, index=True)
    village_id: int = Field(foreign_key="villages.id", index=True, ondelete="RESTRICT")
    latitude: float | None = None
    longitude: float | None = None
    status: EndpointStatus = enum_field(EndpointStatus, EndpointStatus.offline, index=True)
    last_seen_at: datetime | None = None
    volume: int = Field(default=80, ge=0, le=100)
    address: str | None = Field(default=None, max_length=64, description="last connection's address")
    firmware: str | None = Field(default=None, max_length=64)


class EndpointTag(SQLModel, table=True):
    __tablename__ = "endpoint_tags"

    endpoint_id: int = Field(foreign_key="endpoints.id", primary_key=True, ondelete="CASCADE")
    tag: str = Field(max_length=32, primary_key=True, index=True)


class GroupKind(StrEnum):
    fixed = "fixed"  # a fixed list of endpoints
    rule = "rule"  # a selector evaluated at use time


class Group(Timestamped, table=True):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=255)
    kind: GroupKind = enum_field(GroupKind)
    rule: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class GroupMember(SQLModel, table=True):
    __tablename__ = "group_members"

    group_id: int = Field(foreign_key="groups.id", primary_key=True, ondelete="CASCADE")
    endpoint_id: int = Field(foreign_key="endpoints.id", primary_key=True, index=True, ondelete="CASCADE")
