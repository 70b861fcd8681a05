"""API shapes for bulletins (文字稿), their preview and the TTS engine list."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from broadcast.bulletins.templates import MAX_VALUE_CHARS, RenderScope

TITLE = Field(min_length=1, max_length=128, description="标题")
RATE = Field(default=100, ge=50, le=200, description="语速，正常语速的百分比（50-200）")
MAX_CUSTOM_FIELDS = 20


def _strip_title(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    if not stripped:
        raise ValueError("标题不能为空")
    return stripped


class BulletinCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = TITLE
    text: str = Field(
        min_length=1, description="文字稿，可用字段 {village} {town} {date} {weekday} 及自定义字段"
    )
    custom_fields: list[str] = Field(default_factory=list, max_length=MAX_CUSTOM_FIELDS)
    engine: str | None = Field(default=None, max_length=32, description="语音合成引擎；空则按系统默认顺序")
    voice: str | None = Field(default=None, max_length=64)
    rate: int = RATE

    _title = field_validator("title")(_strip_title)


class BulletinUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=128)
    text: str | None = Field(default=None, min_length=1)
    custom_fields: list[str] | None = Field(default=None, max_length=MAX_CUSTOM_FIELDS)
    engine: str | None = Field(default=None, max_length=32)
    voice: str | None = Field(default=None, max_length=64)
    rate: int | None = Field(default=None, ge=50, le=200)

    _title = field_validator("title")(_strip_title)


class BulletinOut(BaseModel):
    id: int
    title: str
    text: str
    custom_fields: list[str]
    engine: str | None
    voice: str | None
    rate: int
    scope: RenderScope = Field(description="渲染范围：全市一次、每个乡镇一次或每个村一次")
    fields_used: list[str]
    created_by: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    village: str | None = Field(default=None, max_length=12, description="村（社区）代码")
    date: dt.date | None = Field(default=None, description="播出日期，默认今天")
    fields: dict[str, str] = Field(default_factory=dict, description="自定义字段的值")

    @field_validator("fields")
    @classmethod
    def _short_values(cls, value: dict[str, str]) -> dict[str, str]:
        too_long = [k for k, v in value.items() if len(v) > MAX_VALUE_CHARS]
        if too_long:
            raise ValueError(f"字段值最多 {MAX_VALUE_CHARS} 个字符：{'、'.join(too_long)}")
        return value


class PreviewOut(BaseModel):
    text: str = Field(description="填入字段后的文字稿")
    spoken_text: str = Field(description="朗读用文字（数字、日期等已转为读法）")
    audio_sha256: str
    audio_url: str
    duration_ms: int
    engine: str
    voice: str
    cached: bool


class VoiceOut(BaseModel):
    id: str
    name: str
    language: str


class EngineOut(BaseModel):
    name: str
    online: bool
    available: bool
    reason: str | None
    voices: list[VoiceOut]
    default_order: int | None = Field(description="在系统默认顺序中的位置，不在其中则为空")
