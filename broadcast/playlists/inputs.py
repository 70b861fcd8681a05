"""Find the audio behind each playlist item: a clip's or chime's stored file, a bulletin spoken
for this render's template values, or a silence's length."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from broadcast.bulletins.service import render_bulletin_audio
from broadcast.config import Settings
from broadcast.content.models import Bulletin, Chime, Clip
from broadcast.content.store import AudioStore
from broadcast.playlists import renders
from broadcast.playlists.models import ItemKind, PlaylistItem
from broadcast.playlists.renderer import ItemSource, RenderFailed

_LABELS = {ItemKind.clip: "录音", ItemKind.bulletin: "文字稿", ItemKind.chime: "提示音"}


def _missing(item: PlaylistItem, ref: int | None) -> RenderFailed:
    label = _LABELS[item.kind]
    return RenderFailed(f"第 {item.position} 条引用的{label} {ref} 已不存在，请编辑节目单后重新合成")


def _stored_sha(session: Session, item: PlaylistItem) -> str:
    if item.kind == ItemKind.clip:
        clip = session.get(Clip, item.clip_id)
        if clip is None:
            raise _missing(item, item.clip_id)
        return clip.blob_sha256
    chime = session.get(Chime, item.chime_id)
    if chime is None:
        raise _missing(item, item.chime_id)
    return chime.blob_sha256


def resolve_items(
    session: Session,
    *,
    items: list[PlaylistItem],
    context: dict[str, Any],
    store: AudioStore,
    settings: Settings,
) -> list[ItemSource]:
    """Each item's audio; bulletins are synthesised (or taken from the TTS cache) on the way."""
    values = renders.template_values(session, context)
    sources = []
    for item in items:
        sha: str | None = None
        ref = item.clip_id or item.bulletin_id or item.chime_id
        if item.kind == ItemKind.bulletin:
            bulletin = session.get(Bulletin, item.bulletin_id)
            if bulletin is None:
                raise _missing(item, item.bulletin_id)
            blob = render_bulletin_audio(
                session, bulletin=bulletin, context=values, store=store, settings=settings
            )
            sha = blob.sha256
        elif item.kind != ItemKind.silence:
            sha = _stored_sha(session, item)
        sources.append(
            ItemSource(
                position=item.position,
                kind=item.kind,
                ref=ref,
                repeat=item.repeat,
                audio_sha256=sha,
                silence_ms=item.silence_ms,
            )
        )
    return sources
