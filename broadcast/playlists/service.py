"""Use cases for playlists: create, list, revise (never edit), delete, and what uses a clip."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.content.models import Bulletin, Chime, Clip
from broadcast.errors import Conflict, Invalid, NotFound
from broadcast.pagination import PageParams, paginate
from broadcast.playlists.models import ItemKind, Playlist, PlaylistItem, PlaylistRevision
from broadcast.playlists.schemas import ItemIn, PlaylistCreate, RevisionIn

_REF_TABLES: dict[ItemKind, tuple[type[Clip] | type[Bulletin] | type[Chime], str]] = {
    ItemKind.clip: (Clip, "录音"),
    ItemKind.bulletin: (Bulletin, "文字稿"),
    ItemKind.chime: (Chime, "提示音"),
}


def get_playlist_or_raise(session: Session, playlist_id: int) -> Playlist:
    playlist = session.get(Playlist, playlist_id)
    if playlist is None:
        raise NotFound(f"节目单 {playlist_id} 不存在")
    return playlist


def get_revision_or_raise(session: Session, *, playlist: Playlist, number: int) -> PlaylistRevision:
    query = select(PlaylistRevision).where(
        PlaylistRevision.playlist_id == playlist.id, PlaylistRevision.number == number
    )
    revision = session.exec(query).first()
    if revision is None:
        raise NotFound(
            f"节目单“{playlist.name}”没有第 {number} 版（最新为第 {playlist.current_revision} 版）"
        )
    return revision


def current_revision(session: Session, playlist: Playlist) -> PlaylistRevision:
    return get_revision_or_raise(session, playlist=playlist, number=playlist.current_revision)


def list_playlists(session: Session, *, q: str | None, params: PageParams) -> tuple[int, list[Playlist]]:
    query = select(Playlist).order_by(col(Playlist.name), col(Playlist.id))
    if q:
        pattern = f"%{q}%"
        query = query.where(col(Playlist.name).ilike(pattern) | col(Playlist.description).ilike(pattern))
    return paginate(session, query, params)


def list_revisions(session: Session, *, playlist: Playlist) -> list[PlaylistRevision]:
    query = (
        select(PlaylistRevision)
        .where(PlaylistRevision.playlist_id == playlist.id)
        .order_by(col(PlaylistRevision.number))
    )
    return list(session.exec(query).all())


def items_of(session: Session, revision: PlaylistRevision) -> list[PlaylistItem]:
    query = (
        select(PlaylistItem)
        .where(PlaylistItem.revision_id == revision.id)
        .order_by(col(PlaylistItem.position))
    )
    return list(session.exec(query).all())


def _missing_references(session: Session, items: list[ItemIn]) -> dict[str, list[int]]:
    missing: dict[str, list[int]] = {}
    for kind, (table, _) in _REF_TABLES.items():
        wanted = {item.ref for item in items if item.kind == kind and item.ref is not None}
        if not wanted:
            continue
        found = set(session.exec(select(table.id).where(col(table.id).in_(wanted))).all())
        if absent := sorted(wanted - found):
            missing[f"{kind.value}_id"] = absent
    return missing


def _check_references(session: Session, items: list[ItemIn]) -> None:
    missing = _missing_references(session, items)
    if missing:
        names = {f"{kind.value}_id": label for kind, (_, label) in _REF_TABLES.items()}
        parts = [f"{names[key]} {'、'.join(map(str, ids))}" for key, ids in missing.items()]
        raise Invalid(f"以下引用不存在，请先上传或选择已有内容：{'；'.join(parts)}", details=missing)


def revision_snapshot(revision: PlaylistRevision, items: list[PlaylistItem]) -> dict[str, Any]:
    return {
        "number": revision.number,
        "repeat": revision.repeat,
        "items": [audit.snapshot(item) for item in items],
    }


def _add_revision(
    session: Session, *, playlist: Playlist, data: RevisionIn, actor: Actor
) -> tuple[PlaylistRevision, list[PlaylistItem]]:
    _check_references(session, data.items)
    revision = PlaylistRevision(
        playlist_id=playlist.id or 0,
        number=playlist.current_revision + 1,
        repeat=data.repeat,
        created_by=actor.user_id,
    )
    session.add(revision)
    session.flush()
    items = [
        PlaylistItem(
            revision_id=revision.id or 0,
            position=position,
            kind=item.kind,
            clip_id=item.clip_id,
            bulletin_id=item.bulletin_id,
            chime_id=item.chime_id,
            silence_ms=item.silence_ms,
            repeat=item.repeat,
        )
        for position, item in enumerate(data.items, start=1)
    ]
    session.add_all(items)
    playlist.current_revision = revision.number
    session.add(playlist)
    session.flush()
    return revision, items


def create_playlist(session: Session, *, data: PlaylistCreate, actor: Actor) -> Playlist:
    if session.exec(select(Playlist.id).where(Playlist.name == data.name)).first() is not None:
        raise Conflict(f"已有名为“{data.name}”的节目单，请换一个名称")
    playlist = Playlist(name=data.name, description=data.description, created_by=actor.user_id)
    session.add(playlist)
    session.flush()
    revision, items = _add_revision(session, playlist=playlist, data=data, actor=actor)
    after = {**(audit.snapshot(playlist) or {}), "revision": revision_snapshot(revision, items)}
    audit.record(
        session,
        actor=actor,
        action="playlist.create",
        entity_type="playlist",
        entity_id=playlist.id,
        after=after,
    )
    return playlist


def create_revision(
    session: Session, *, playlist: Playlist, data: RevisionIn, actor: Actor
) -> PlaylistRevision:
    """An edit: a new revision numbered after the newest; earlier revisions stay as they were."""
    before = current_revision(session, playlist)
    before_snapshot = revision_snapshot(before, items_of(session, before))
    revision, items = _add_revision(session, playlist=playlist, data=data, actor=actor)
    audit.record(
        session,
        actor=actor,
        action="playlist.revise",
        entity_type="playlist",
        entity_id=playlist.id,
        before=before_snapshot,
        after=revision_snapshot(revision, items),
    )
    return revision


def delete_playlist(session: Session, *, playlist: Playlist, actor: Actor) -> None:
    """Revisions, their items and renders go with it (ON DELETE CASCADE); campaigns and planned
    slots hold on to their revisions (RESTRICT), so a playlist in use cannot be deleted."""
    before = {
        **(audit.snapshot(playlist) or {}),
        "revisions": len(list_revisions(session, playlist=playlist)),
    }
    try:
        with session.begin_nested():
            session.delete(playlist)
    except IntegrityError as exc:
        raise Conflict(
            f"节目单“{playlist.name}”正被宣传计划或已排定的播出时段使用，不能删除：请先停用并删除相关宣传计划",
            details={"playlist_id": playlist.id},
        ) from exc
    audit.record(
        session,
        actor=actor,
        action="playlist.delete",
        entity_type="playlist",
        entity_id=playlist.id,
        before=before,
    )
