"""Use cases of the content feature: clips (录音素材) and serving stored audio."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from sqlalchemy import String, cast, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from broadcast.alerts.models import Alert
from broadcast.auth.audit import Actor, record, snapshot
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.content import intake
from broadcast.content.audio import probe
from broadcast.content.models import AudioBlob, Clip
from broadcast.content.schemas import ClipCreate, ClipUpdate
from broadcast.content.store import AudioStore, ingest_audio, sha256_file
from broadcast.errors import Conflict, NotFound
from broadcast.pagination import PageParams, paginate
from broadcast.playlists.models import Playlist, PlaylistItem, PlaylistRevision

SHA256_HEX = frozenset("0123456789abcdef")
_NAME_MAX = 255
_ALERTS_NAMED = 3


def find_clip_by_source(session: Session, source_sha256: str) -> Clip | None:
    return session.exec(select(Clip).where(Clip.source_sha256 == source_sha256)).first()


def create_clip(
    session: Session,
    *,
    source: Path,
    original_name: str,
    data: ClipCreate,
    uploader_id: int | None,
    actor: Actor,
    settings: Settings,
    store: AudioStore,
) -> tuple[Clip, bool]:
    """Check, transcode and store an uploaded recording. Returns (clip, created).

    The same bytes uploaded again return the existing clip with ``created=False``.
    """
    intake.check_size(source.stat().st_size, settings)
    source_sha256 = sha256_file(source)
    existing = find_clip_by_source(session, source_sha256)
    if existing is not None:
        return existing, False
    kind = intake.sniff(source)
    declared = probe(source, timeout_s=settings.ffmpeg_timeout_s)
    intake.check_probe(declared, settings)
    blob = ingest_audio(
        session,
        store=store,
        source=source,
        settings=settings,
        max_duration_s=settings.clip_max_duration_s + 1,
        validate=partial(intake.check_decoded, declared=declared, settings=settings),
    )
    clip = Clip.model_validate(
        {
            "title": data.title,
            "tags": data.tags,
            "blob_sha256": blob.sha256,
            "source_sha256": source_sha256,
            "source_format": intake.source_format(kind, declared),
            "original_name": Path(original_name).name[-_NAME_MAX:] or "upload",
            "duration_ms": blob.duration_ms,
            "uploaded_by": uploader_id,
        }
    )
    session.add(clip)
    session.flush()
    record(
        session,
        actor=actor,
        action="clip.create",
        entity_type="clip",
        entity_id=clip.id,
        after=snapshot(clip),
    )
    return clip, True


def list_clips(
    session: Session, *, q: str | None, tag: str | None, params: PageParams
) -> tuple[int, list[Clip]]:
    query = select(Clip).order_by(col(Clip.created_at).desc(), col(Clip.id).desc())
    if q:
        query = query.where(
            or_(
                col(Clip.title).icontains(q, autoescape=True),
                col(Clip.original_name).icontains(q, autoescape=True),
            )
        )
    if tag:
        # Tags are a JSON list on both backends; its text holds each tag as a quoted JSON string
        # (encoded the way SQLAlchemy's JSON type encodes it), so this matches whole tags only.
        query = query.where(cast(col(Clip.tags), String).contains(json.dumps(tag), autoescape=True))
    return paginate(session, query, params)


def get_clip_or_raise(session: Session, clip_id: int) -> Clip:
    clip = session.get(Clip, clip_id)
    if clip is None:
        raise NotFound(f"录音素材 #{clip_id} 不存在（可能已被删除）")
    return clip


def update_clip(session: Session, *, clip: Clip, data: ClipUpdate, actor: Actor) -> Clip:
    before = snapshot(clip)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    for field, value in changes.items():
        setattr(clip, field, value)
    clip.updated_at = utc_now()
    session.add(clip)
    session.flush()
    record(
        session,
        actor=actor,
        action="clip.update",
        entity_type="clip",
        entity_id=clip.id,
        before=before,
        after=snapshot(clip),
    )
    return clip


def playlists_using_clip(session: Session, clip_id: int) -> list[str]:
    query = (
        select(Playlist.name)
        .join(PlaylistRevision, col(PlaylistRevision.playlist_id) == col(Playlist.id))
        .join(PlaylistItem, col(PlaylistItem.revision_id) == col(PlaylistRevision.id))
        .where(PlaylistItem.clip_id == clip_id)
        .distinct()
        .order_by(col(Playlist.name))
    )
    return list(session.exec(query).all())


def alerts_using_clip(session: Session, clip_id: int) -> tuple[int, list[Alert]]:
    """How many alerts play the clip, and the latest few of them."""
    query = select(Alert).where(Alert.clip_id == clip_id).order_by(col(Alert.id).desc())
    return paginate(session, query, PageParams(limit=_ALERTS_NAMED, offset=0))


def _refuse_if_alerts_use(session: Session, clip: Clip) -> None:
    # Checked before the playlists: an alert's hold never ends, so "remove it from the
    # playlists first" would only lead to a second refusal.
    total, latest = alerts_using_clip(session, clip.id or 0)
    if not total:
        return
    listed = "、".join(f"#{alert.id}「{alert.title}」" for alert in latest)
    more = f"等 {total} 条" if total > len(latest) else ""
    raise Conflict(
        f"录音素材「{clip.title}」被预警 {listed}{more}使用，不能删除：预警（含草稿和已作废的）"
        "作为播发记录一直保留，它用到的录音也须保留。如不再使用这条录音，可修改它的标题或标签"
        "（如加标签「停用」）加以区分",
        details={"alerts": [{"id": a.id, "title": a.title} for a in latest], "alert_count": total},
    )


def _refuse_if_playlists_use(session: Session, clip: Clip) -> None:
    names = playlists_using_clip(session, clip.id or 0)
    if names:
        listed = "、".join(f"「{n}」" for n in names)
        raise Conflict(
            f"录音素材「{clip.title}」正被节目单 {listed} 使用，不能删除：请先从这些节目单中移除它",
            details={"playlists": names},
        )


def delete_clip(session: Session, *, clip: Clip, actor: Actor) -> None:
    _refuse_if_alerts_use(session, clip)
    _refuse_if_playlists_use(session, clip)
    before, title = snapshot(clip), clip.title
    session.delete(clip)
    try:
        session.flush()
    except IntegrityError as exc:
        # A playlist or an alert took the clip up between the checks and the delete (the
        # failed flush leaves the row unreadable until the caller rolls back).
        raise Conflict(
            f"录音素材「{title}」刚被节目单或预警用上，不能删除：请刷新后再试一次，届时会列出用到它的节目单或预警"
        ) from exc
    record(session, actor=actor, action="clip.delete", entity_type="clip", entity_id=clip.id, before=before)


def get_blob_or_raise(session: Session, sha256: str, *, store: AudioStore) -> tuple[AudioBlob, Path]:
    """A stored file and its row; 404 for a malformed hash, an unknown one, or a missing file."""
    blob = session.get(AudioBlob, sha256) if len(sha256) == 64 and set(sha256) <= SHA256_HEX else None
    path = store.path_for(sha256) if blob is not None else None
    if blob is None or path is None or not path.is_file():
        raise NotFound(f"音频 {sha256[:16]}… 不存在")
    return blob, path


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of an If-None-Match list against our (strong) ETag."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags or "*" in tags
