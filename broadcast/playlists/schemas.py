"""API shapes for playlists (节目单), their revisions and rendered programs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field, model_validator

from broadcast.playlists.models import ItemKind, RenderStatus

MAX_ITEMS = 100
SILENCE_MIN_MS = 100
SILENCE_MAX_MS = 10 * 60 * 1000
_REFS = {ItemKind.clip: "clip_id", ItemKind.bulletin: "bulletin_id", ItemKind.chime: "chime_id"}


class ItemIn(BaseModel):
    kind: ItemKind
    clip_id: int | None = Field(default=None, ge=1)
    bulletin_id: int | None = Field(default=None, ge=1)
    chime_id: int | None = Field(default=None, ge=1)
    silence_ms: int | None = Field(
        default=None, ge=SILENCE_MIN_MS, le=SILENCE_MAX_MS, description="静音时长，100 毫秒至 10 分钟"
    )
    repeat: int = Field(default=1, ge=1, le=20, description="本条目连续播放次数")

    @model_validator(mode="after")
    def _one_reference(self) -> ItemIn:
        wanted = _REFS.get(self.kind, "silence_ms")
        given = [name for name in (*_REFS.values(), "silence_ms") if getattr(self, name) is not None]
        if given != [wanted]:
            raise ValueError(
                f"{self.kind.value} 类条目必须且只能填写 {wanted}（收到：{', '.join(given) or '无'}）"
            )
        return self

    @property
    def ref(self) -> int | None:
        name = _REFS.get(self.kind)
        return None if name is None else getattr(self, name)


class RevisionIn(BaseModel):
    """The full content of a new revision: revisions are never edited, only superseded."""

    items: list[ItemIn] = Field(max_length=MAX_ITEMS, description="按播放顺序排列，最多 100 条")
    repeat: int = Field(default=1, ge=1, le=10, description="整张节目单的播放遍数")

    @model_validator(mode="after")
    def _audible(self) -> RevisionIn:
        if not any(item.kind != ItemKind.silence for item in self.items):
            raise ValueError("节目单至少要包含一条有声条目（录音、文字稿或提示音），不能为空或只有静音")
        return self


class PlaylistCreate(RevisionIn):
    name: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=500)


class ItemOut(BaseModel):
    position: int
    kind: ItemKind
    clip_id: int | None
    bulletin_id: int | None
    chime_id: int | None
    silence_ms: int | None
    repeat: int


class RevisionOut(BaseModel):
    id: int
    playlist_id: int
    number: int
    repeat: int
    created_by: int | None
    created_at: dt.datetime
    items: list[ItemOut]


class PlaylistOut(BaseModel):
    id: int
    name: str
    description: str
    current_revision: int
    created_by: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class PlaylistDetail(PlaylistOut):
    revision: RevisionOut


class RenderRequest(BaseModel):
    """The template values of one render: a village, a broadcast date and custom fields."""

    village: str | None = Field(default=None, min_length=1, max_length=12, description="村（社区）代码")
    date: dt.date | None = Field(default=None, description="播出日期，默认今天（本地时间）")
    fields: dict[str, str] = Field(default_factory=dict, max_length=50, description="自定义字段的值")

    @model_validator(mode="after")
    def _field_sizes(self) -> RenderRequest:
        for key, value in self.fields.items():
            if not key.isidentifier() or len(key) > 64 or len(value) > 200:
                raise ValueError(f"自定义字段 {key[:64]!r} 无效：名称须为字母/数字/下划线，值不超过 200 字")
        return self


class RenderOut(BaseModel):
    id: int
    playlist_id: int
    revision_id: int
    revision_number: int
    status: RenderStatus
    error: str | None
    context: dict[str, Any]
    manifest: dict[str, Any] | None
    duration_ms: int | None
    blob_sha256: str | None
    audio_url: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
