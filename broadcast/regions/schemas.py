"""API shapes for towns, villages, endpoints, their CSV import and device tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from broadcast.regions.models import TAGS, EndpointStatus, TownKind, VillageKind

TOWN_CODE = Field(min_length=1, max_length=12, pattern=r"^[0-9A-Za-z]+$", description="乡镇代码")
VILLAGE_CODE = Field(min_length=1, max_length=12, pattern=r"^[0-9A-Za-z]+$", description="村（社区）代码")
ENDPOINT_CODE_PATTERN = r"^[0-9A-Za-z_\-.]+$"


def check_tags(tags: list[str]) -> list[str]:
    """Tags sorted and deduplicated; an unknown one names the valid choices."""
    unknown = sorted(set(tags) - set(TAGS))
    if unknown:
        raise ValueError(f"未知标签：{'、'.join(unknown)}；可用标签：{'、'.join(TAGS)}")
    return sorted(set(tags))


class EndpointFilters(BaseModel):
    """Filters for the endpoint list, the CSV export and the console; codes, not ids."""

    town: str | None = None
    village: str | None = None
    tag: str | None = None
    status: str | None = None
    q: str | None = Field(default=None, max_length=64)


class TownCreate(BaseModel):
    code: str = TOWN_CODE
    name: str = Field(min_length=1, max_length=64)
    kind: TownKind = TownKind.town


class TownUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    kind: TownKind | None = None


class TownOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    kind: TownKind


class VillageCreate(BaseModel):
    code: str = VILLAGE_CODE
    name: str = Field(min_length=1, max_length=64)
    kind: VillageKind = VillageKind.village
    town_code: str = TOWN_CODE


class VillageUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    kind: VillageKind | None = None
    town_code: str | None = Field(default=None, min_length=1, max_length=12)


class VillageOut(BaseModel):
    code: str
    name: str
    kind: VillageKind
    town_code: str
    town_name: str


class _EndpointFields(BaseModel):
    latitude: float | None = Field(default=None, ge=-90, le=90, description="纬度")
    longitude: float | None = Field(default=None, ge=-180, le=180, description="经度")


class EndpointCreate(_EndpointFields):
    code: str = Field(min_length=1, max_length=32, pattern=ENDPOINT_CODE_PATTERN)
    name: str = Field(min_length=1, max_length=128)
    village_code: str = VILLAGE_CODE
    tags: list[str] = Field(default_factory=list, description="标签，取值见 regions.models.TAGS")
    volume: int = Field(default=80, ge=0, le=100)
    status: EndpointStatus = EndpointStatus.offline

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return check_tags(value)


class EndpointUpdate(_EndpointFields):
    """Only the fields sent are changed; send ``latitude: null`` to clear a coordinate."""

    name: str | None = Field(default=None, min_length=1, max_length=128)
    village_code: str | None = Field(default=None, min_length=1, max_length=12)
    tags: list[str] | None = None
    volume: int | None = Field(default=None, ge=0, le=100)
    status: EndpointStatus | None = None

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_tags(value)


class EndpointOut(BaseModel):
    code: str
    name: str
    village_code: str
    village_name: str
    town_code: str
    town_name: str
    tags: list[str]
    latitude: float | None
    longitude: float | None
    status: EndpointStatus
    last_seen_at: datetime | None
    volume: int


class RowError(BaseModel):
    """One problem in an imported file; ``line`` counts the header as line 1."""

    line: int
    column: str | None
    message: str


class ImportResult(BaseModel):
    created: int
    updated: int
    unchanged: int
    errors: list[RowError]


class DeviceTokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class IssuedDeviceToken(DeviceTokenOut):
    """The only response that ever carries the secret: store it on the device now."""

    secret: str
    revoked_token_ids: list[int]
