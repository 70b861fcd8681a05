"""The background render runner: a few worker threads that claim queued renders and run them.

Claiming is one ``UPDATE … WHERE status = 'queued' RETURNING id`` per candidate, so on SQLite
and PostgreSQL alike two workers (threads or processes) never run the same render. A render
runs in three short transactions (resolve inputs, then store the program and mark it done) with
the long ffmpeg work in between outside any transaction, so SQLite writers are not blocked.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.content.store import get_store, ingest_audio
from broadcast.db import transaction
from broadcast.errors import BroadcastError
from broadcast.playlists import renders
from broadcast.playlists.inputs import resolve_items
from broadcast.playlists.manifest import build_manifest
from broadcast.playlists.models import Render, RenderStatus
from broadcast.playlists.renderer import Progress, build_program

log = logging.getLogger(__name__)
POLL_S = 1.0


def claim(engine: Engine, render_id: int) -> bool:
    """Move one queued render to running; False if another worker got there first."""
    statement = (
        update(Render)
        .where(col(Render.id) == render_id, col(Render.status) == RenderStatus.queued)
        .values(status=RenderStatus.running, started_at=utc_now())
        .returning(col(Render.id))
    )
    with transaction(engine) as session:
        return session.execute(statement).first() is not None


def claim_next(engine: Engine) -> int | None:
    """The id of the oldest queued render, now claimed by the caller; None when the queue is empty."""
    while True:
        with Session(engine) as session:
            query = select(Render.id).where(Render.status == RenderStatus.queued).order_by(col(Render.id))
            candidate = session.exec(query).first()
        if candidate is None:
            return None
        if claim(engine, candidate):
            return candidate


def requeue_stale(engine: Engine, *, older_than: timedelta) -> list[int]:
    """Queue again the renders left ``running`` by a process that died mid-render."""
    cutoff = utc_now() - older_than
    with transaction(engine) as session:
        query = select(Render).where(Render.status == RenderStatus.running, col(Render.started_at) < cutoff)
        stale = list(session.exec(query).all())
        for render in stale:
            renders.requeue(session, render=render, reason="渲染进程中断，已重新排队")
        return [render.id or 0 for render in stale]


def _quiet(_: str) -> None:
    return None


def _readable(exc: Exception) -> str:
    if isinstance(exc, BroadcastError):
        return exc.message
    return f"节目合成失败（内部错误：{type(exc).__name__}），请稍后重试或联系管理员"


def execute(engine: Engine, render_id: int, *, settings: Settings, progress: Progress = _quiet) -> Render:
    """Run one claimed render to done or failed; errors end up in ``Render.error``, never raised."""
    try:
        return _render(engine, render_id, settings=settings, progress=progress)
    except Exception as exc:
        log.exception("render %s failed", render_id)
        with transaction(engine) as session:
            render = renders.get_render_or_raise(session, render_id)
            renders.mark_failed(session, render=render, error=_readable(exc))
            return render


def _render(engine: Engine, render_id: int, *, settings: Settings, progress: Progress) -> Render:
    store = get_store(settings)
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    progress("准备素材")
    with transaction(engine) as session:
        render = renders.get_render_or_raise(session, render_id)
        revision, items = renders.revision_items(session, render)
        resolved = resolve_items(session, items=items, context=render.context, store=store, settings=settings)
    with tempfile.TemporaryDirectory(prefix="render-", dir=store.tmp_dir) as workdir:
        plan, wav = build_program(
            resolved,
            playlist_repeat=revision.repeat,
            path_for=store.path_for,
            workdir=Path(workdir),
            settings=settings,
            progress=progress,
        )
        progress("响度标准化并编码")
        with transaction(engine) as session:
            blob = ingest_audio(session, store=store, source=wav, settings=settings)
            render = renders.get_render_or_raise(session, render_id)
            manifest = build_manifest(revision=revision, render=render, plan=plan, blob=blob)
            renders.mark_finished(
                session, render=render, sha256=blob.sha256, manifest=manifest, duration_ms=plan.duration_ms
            )
    return render


def run_pending(engine: Engine, *, settings: Settings, stop: threading.Event | None = None) -> int:
    """Run queued renders until the queue is empty (or ``stop`` is set); returns how many ran."""
    count = 0
    while stop is None or not stop.is_set():
        render_id = claim_next(engine)
        if render_id is None:
            break
        execute(engine, render_id, settings=settings)
        count += 1
    return count


@dataclass
class RenderWorkers:
    engine: Engine
    settings: Settings
    size: int
    stop: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for index in range(self.size):
            thread = threading.Thread(target=self._loop, name=f"render-worker-{index}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                run_pending(self.engine, settings=self.settings, stop=self.stop)
            except Exception:
                # The database may be briefly unreachable: log it and try again on the next tick.
                log.exception("render worker tick failed")
            self.wake.wait(POLL_S)
            self.wake.clear()

    def close(self, timeout_s: float = 30.0) -> None:
        self.stop.set()
        self.wake.set()
        for thread in self.threads:
            thread.join(timeout_s)


def start_render_workers(app: FastAPI) -> RenderWorkers:
    """Start ``settings.render_workers`` threads for this app; call from the app's lifespan."""
    running: RenderWorkers | None = getattr(app.state, "render_workers", None)
    if running is not None:
        return running
    settings: Settings = app.state.settings
    # A render takes a few ffmpeg passes, each bounded by ffmpeg_timeout_s.
    requeue_stale(app.state.engine, older_than=timedelta(seconds=6 * settings.ffmpeg_timeout_s))
    workers = RenderWorkers(engine=app.state.engine, settings=settings, size=settings.render_workers)
    workers.start()
    app.state.render_workers = workers
    return workers


def stop_render_workers(app: FastAPI) -> None:
    """Stop the workers: the render in progress finishes first (ffmpeg has its own timeout)."""
    workers: RenderWorkers | None = getattr(app.state, "render_workers", None)
    if workers is not None:
        workers.close()
        app.state.render_workers = None
