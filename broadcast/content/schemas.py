"""API shapes of the content feature: clips, chimes and stored audio."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from broadcast.content.models import ChimeKind

MAX_TAGS = 20
MAX_TAG_CHARS = 32
_TAG_SEPARATORS = (",", "，", "、")


def normalise_tags(raw: list[str]) -> list[str]:
    """Split on commas (ASCII, full-width, 、), strip, drop empties and duplicates, keep order."""
    tags: list[str] = []
    for item in raw:
        for sep in _TAG_SEPARATORS[1:]:
            item = item.replace(sep, _TAG_SEPARATORS[0])
        for tag in (part.strip() for part in item.split(_TAG_SEPARATORS[0])):
            if tag and tag not in tags:
                tags.append(tag)
    return tags


class _Tagged(BaseModel):
    @field_validator("tags", mode="before", check_fields=False)
    @classmethod
    def _split_tags(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            tags = normalise_tags([str(v) for v in value])
            if len(tags) > MAX_TAGS:
                raise ValueError(f"标签最多 {MAX_TAGS} 个")
            if any(len(t) > MAX_TAG_CHARS for t in tags):
                raise ValueError(f"每个标签最多 {MAX_TAG_CHARS} 个字")
            return tags
        return value


class ClipCreate(_Tagged):
    title: str = Field(min_length=1, max_length=128)
    tags: list[str] = Field(default_factory=list)

    @field_validator("title", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value


class ClipUpdate(_Tagged):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=128)
    tags: list[str] | None = None


class ClipOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    tags: list[str]
    duration_ms: int
    blob_sha256: str
    audio_url: str
    source_format: str
    original_name: str
    uploaded_by: int | None
    created_at: datetime
    updated_at: datetime


class ClipUploadOut(ClipOut):
    created: bool = Field(description="false: the same recording was uploaded before; nothing new stored")
    message: str


class ChimeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    name: str
    kind: ChimeKind
    builtin: bool
    duration_ms: int
    blob_sha256: str
    audio_url: str


def audio_url(sha256: str) -> str:
    return f"/api/v1/audio/{sha256}"
