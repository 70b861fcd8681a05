"""Use cases for rendered programs: request one (idempotently), read it, resolve its inputs.

A render is a revision played with one set of template values. The values are canonicalised
(only what the revision's bulletins actually use) and hashed into ``context_key``, so asking
again for the same program, for example for another village when no bulletin names the
village, returns the existing render instead of making a new one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.bulletins.templates import RenderContext, RenderScope, fields_used, render_scope
from broadcast.clock import utc_now
from broadcast.content.models import Bulletin
from broadcast.errors import Invalid, NotFound
from broadcast.playlists.models import ItemKind, PlaylistItem, PlaylistRevision, Render, RenderStatus
from broadcast.playlists.schemas import RenderOut, RenderRequest
from broadcast.playlists.service import items_of
from broadcast.regions.models import Town, Village

AUDIO_URL = "/api/v1/audio/{sha256}"


def bulletins_of(session: Session, revision: PlaylistRevision) -> list[Bulletin]:
    ids = {item.bulletin_id for item in items_of(session, revision) if item.kind == ItemKind.bulletin}
    if not ids:
        return []
    return list(session.exec(select(Bulletin).where(col(Bulletin.id).in_(ids))).all())


def context_key(context: dict[str, Any]) -> str:
    canonical = json.dumps(context, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _village_or_raise(session: Session, code: str) -> Village:
    village = session.exec(select(Village).where(Village.code == code)).first()
    if village is None:
        raise Invalid(f"村（社区）代码 {code} 不存在，请核对行政区划代码", details={"village": code})
    return village


def _place(session: Session, *, scope: RenderScope, village_code: str | None) -> dict[str, str]:
    if scope == RenderScope.once:
        return {}
    if village_code is None:
        raise Invalid(
            "节目单中的文字稿使用了 {village} 或 {town}，请指定村（社区）代码 village",
            details={"missing": "village"},
        )
    village = _village_or_raise(session, village_code)
    if scope == RenderScope.per_village:
        return {"village": village.code}
    town = session.get(Town, village.town_id)
    return {"town": town.code if town else ""}


def _custom_values(used: set[str], bulletins: list[Bulletin], given: dict[str, str]) -> dict[str, str]:
    wanted = sorted({name for b in bulletins for name in b.custom_fields} & used)
    missing = [name for name in wanted if not given.get(name, "").strip()]
    if missing:
        raise Invalid(
            f"文字稿需要以下自定义字段的值：{'、'.join(missing)}，请在 fields 中提供",
            details={"missing_fields": missing},
        )
    return {name: given[name].strip() for name in wanted}


@dataclass(frozen=True)
class ContextNeeds:
    """Which template values change a revision's program: where it plays, and on which day."""

    bulletins: list[Bulletin]
    used: frozenset[str]
    scope: RenderScope

    @property
    def dated(self) -> bool:
        return bool(self.used & {"date", "weekday"})


def context_needs(session: Session, revision: PlaylistRevision) -> ContextNeeds:
    bulletins = bulletins_of(session, revision)
    scopes = {render_scope(bulletin.text) for bulletin in bulletins}
    scope = next(
        (s for s in (RenderScope.per_village, RenderScope.per_town) if s in scopes), RenderScope.once
    )
    used = frozenset(name for bulletin in bulletins for name in fields_used(bulletin.text))
    return ContextNeeds(bulletins=bulletins, used=used, scope=scope)


def build_context(
    session: Session, *, revision: PlaylistRevision, data: RenderRequest, today: date
) -> dict[str, Any]:
    """The canonical template values of a render: only what the revision's bulletins use."""
    needs = context_needs(session, revision)
    if data.village is not None:
        _village_or_raise(session, data.village)
    context: dict[str, Any] = _place(session, scope=needs.scope, village_code=data.village)
    if needs.dated:
        context["date"] = (data.date or today).isoformat()
    if fields := _custom_values(set(needs.used), needs.bulletins, data.fields):
        context["fields"] = fields
    return context


def template_values(session: Session, context: dict[str, Any]) -> RenderContext:
    """The bulletin template values a canonical render context stands for."""
    village = town = None
    if code := context.get("village"):
        village = _village_or_raise(session, code)
        town = session.get(Town, village.town_id)
    elif code := context.get("town"):
        town = session.exec(select(Town).where(Town.code == code)).first()
    day = context.get("date")
    return RenderContext(
        village=village.name if village else None,
        town=town.name if town else None,
        local_date=date.fromisoformat(day) if day else None,
        fields=dict(context.get("fields", {})),
    )


def _find(session: Session, revision_id: int, key: str) -> Render | None:
    query = select(Render).where(Render.revision_id == revision_id, Render.context_key == key)
    return session.exec(query).first()


def _insert(session: Session, render: Render) -> Render:
    """Insert, or return the row a concurrent request inserted first."""
    try:
        with session.begin_nested():
            session.add(render)
    except IntegrityError:
        existing = _find(session, render.revision_id, render.context_key)
        if existing is None:
            raise
        return existing
    return render


def request_render(
    session: Session, *, revision: PlaylistRevision, data: RenderRequest, actor: Actor, today: date
) -> Render:
    """Queue a render, or return the one already made for the same revision and context.

    A failed render is queued again: asking again is how an editor retries.
    """
    context = build_context(session, revision=revision, data=data, today=today)
    key = context_key(context)
    render = _find(session, revision.id or 0, key)
    if render is not None and render.status != RenderStatus.failed:
        return render
    before = audit.snapshot(render)
    if render is None:
        render = _insert(
            session,
            Render(
                revision_id=revision.id or 0, context_key=key, context=context, requested_by=actor.user_id
            ),
        )
    else:
        render.status, render.error = RenderStatus.queued, None
        render.started_at = render.finished_at = None
        render.requested_by = actor.user_id
        session.add(render)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="render.request",
        entity_type="render",
        entity_id=render.id,
        before=before,
        after=audit.snapshot(render),
    )
    return render


def get_render_or_raise(session: Session, render_id: int) -> Render:
    render = session.get(Render, render_id)
    if render is None:
        raise NotFound(f"渲染任务 {render_id} 不存在")
    return render


def render_out(session: Session, render: Render) -> RenderOut:
    revision = session.get(PlaylistRevision, render.revision_id)
    if revision is None:
        raise NotFound(f"渲染任务 {render.id} 的节目单版本已被删除")
    audio_url = AUDIO_URL.format(sha256=render.blob_sha256) if render.blob_sha256 else None
    return RenderOut.model_validate(
        {
            **render.model_dump(),
            "playlist_id": revision.playlist_id,
            "revision_number": revision.number,
            "audio_url": audio_url,
        }
    )


def mark_finished(
    session: Session, *, render: Render, sha256: str, manifest: dict[str, Any], duration_ms: int
) -> None:
    before = audit.snapshot(render)
    render.status, render.error = RenderStatus.done, None
    render.blob_sha256, render.manifest, render.duration_ms = sha256, manifest, duration_ms
    render.finished_at = utc_now()
    session.add(render)
    session.flush()
    audit.record(
        session,
        actor=audit.SYSTEM,
        action="render.done",
        entity_type="render",
        entity_id=render.id,
        before=before,
        after=audit.snapshot(render),
    )


def requeue(session: Session, *, render: Render, reason: str) -> None:
    before = audit.snapshot(render)
    render.status, render.started_at = RenderStatus.queued, None
    session.add(render)
    session.flush()
    audit.record(
        session,
        actor=audit.SYSTEM,
        action="render.requeue",
        entity_type="render",
        entity_id=render.id,
        before=before,
        after={**(audit.snapshot(render) or {}), "reason": reason},
    )


def mark_failed(session: Session, *, render: Render, error: str) -> None:
    before = audit.snapshot(render)
    render.status, render.error, render.finished_at = RenderStatus.failed, error, utc_now()
    session.add(render)
    session.flush()
    audit.record(
        session,
        actor=audit.SYSTEM,
        action="render.fail",
        entity_type="render",
        entity_id=render.id,
        before=before,
        after=audit.snapshot(render),
    )


def revision_items(session: Session, render: Render) -> tuple[PlaylistRevision, list[PlaylistItem]]:
    revision = session.get(PlaylistRevision, render.revision_id)
    if revision is None:
        raise NotFound(f"渲染任务 {render.id} 的节目单版本已被删除")
    return revision, items_of(session, revision)


def wake_render_workers(app: FastAPI) -> None:
    """Nudge this process's render workers (see ``jobs.start_render_workers``); they also poll."""
    workers = getattr(app.state, "render_workers", None)
    if workers is not None:
        workers.wake.set()
