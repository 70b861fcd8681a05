"""Render jobs: claimed once, run to done with a truthful manifest, failures kept readable."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from broadcast.auth.audit import CLI
from broadcast.config import Settings
from broadcast.content.audio import measure_loudness, probe
from broadcast.content.chimes import ensure_builtin_chimes
from broadcast.content.models import ChimeKind
from broadcast.content.store import AudioStore
from broadcast.db import transaction
from broadcast.playlists import jobs, renders, service
from broadcast.playlists.models import Playlist, Render, RenderStatus
from broadcast.playlists.schemas import ItemIn, PlaylistCreate, RenderRequest, RevisionIn
from tests.playlists.conftest import make_bulletin, make_clip, recording, stored_clip

TODAY = date(2026, 5, 1)


def _queue(session: Session, playlist: Playlist, number: int, data: RenderRequest | None = None) -> int:
    revision = service.get_revision_or_raise(session, playlist=playlist, number=number)
    render = renders.request_render(
        session, revision=revision, data=data or RenderRequest(), actor=CLI, today=TODAY
    )
    return render.id or 0


def test_claims_never_hand_one_render_to_two_workers(engine: Engine) -> None:
    with transaction(engine) as session:
        clip = make_clip(session)
        body = PlaylistCreate(name="认领", items=[ItemIn(kind="clip", clip_id=clip.id)])
        playlist = service.create_playlist(session, data=body, actor=CLI)
        bulletin = make_bulletin(session, text="{date}天气预报。")
        data = RevisionIn(items=[ItemIn(kind="bulletin", bulletin_id=bulletin.id)])
        service.create_revision(session, playlist=playlist, data=data, actor=CLI)
        queued = {_queue(session, playlist, 1)}
        for day in range(1, 9):
            request = RenderRequest(date=date(2026, 5, day))
            queued.add(_queue(session, playlist, 2, request))
    assert len(queued) == 9
    claimed: list[int] = []

    def worker() -> None:
        while (render_id := jobs.claim_next(engine)) is not None:
            claimed.append(render_id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(claimed) == sorted(queued)
    with Session(engine) as session:
        assert {r.status for r in session.exec(select(Render)).all()} == {RenderStatus.running}


def test_render_job_end_to_end(
    sqlite_engine: Engine, settings: Settings, store: AudioStore, tmp_path: Path
) -> None:
    with transaction(sqlite_engine) as session:
        attention, closing = sorted(
            ensure_builtin_chimes(session, store=store, settings=settings),
            key=lambda c: c.kind != ChimeKind.attention,
        )
        clip = stored_clip(
            session, store=store, settings=settings, source=recording(tmp_path / "r.m4a", seconds=4)
        )
        items = [
            ItemIn(kind="chime", chime_id=attention.id),
            ItemIn(kind="clip", clip_id=clip.id, repeat=2),
            ItemIn(kind="silence", silence_ms=700),
            ItemIn(kind="chime", chime_id=closing.id),
        ]
        playlist = service.create_playlist(
            session, data=PlaylistCreate(name="端到端", items=items, repeat=2), actor=CLI
        )
        service.create_revision(session, playlist=playlist, data=RevisionIn(items=items[1:2]), actor=CLI)
        render_id = _queue(session, playlist, 1)

    assert jobs.run_pending(sqlite_engine, settings=settings) == 1

    with Session(sqlite_engine) as session:
        render = renders.get_render_or_raise(session, render_id)
    assert render.status == RenderStatus.done, render.error
    manifest = render.manifest or {}
    assert manifest["revision_number"] == 1
    assert [i["kind"] for i in manifest["items"]][:5] == ["chime", "clip", "clip", "silence", "chime"]
    assert len(manifest["items"]) == 10
    assert [i["playlist_pass"] for i in manifest["items"]] == [1] * 5 + [2] * 5
    ends = [i["start_ms"] + i["duration_ms"] for i in manifest["items"]]
    assert [i["start_ms"] for i in manifest["items"][1:]] == ends[:-1]
    assert ends[-1] == manifest["duration_ms"] == render.duration_ms
    program = store.path_for(render.blob_sha256 or "")
    info = probe(program, timeout_s=30)
    assert abs((info.duration_ms or 0) - manifest["duration_ms"]) <= 50
    assert info.audio_streams[0].sample_rate == 48000
    assert abs(measure_loudness(program).integrated_lufs - settings.loudness_target_lufs) <= 1.0
    assert manifest["program"]["sha256"] == render.blob_sha256


def test_a_failed_render_says_why_and_the_worker_carries_on(
    sqlite_engine: Engine, settings: Settings, store: AudioStore, tmp_path: Path
) -> None:
    with transaction(sqlite_engine) as session:
        good = stored_clip(
            session, store=store, settings=settings, source=recording(tmp_path / "ok.wav", seconds=1)
        )
        lost = make_clip(session, title="丢失的录音")
        broken = service.create_playlist(
            session, data=PlaylistCreate(name="坏", items=[ItemIn(kind="clip", clip_id=lost.id)]), actor=CLI
        )
        fine = service.create_playlist(
            session, data=PlaylistCreate(name="好", items=[ItemIn(kind="clip", clip_id=good.id)]), actor=CLI
        )
        broken_id, fine_id = _queue(session, broken, 1), _queue(session, fine, 1)

    assert jobs.run_pending(sqlite_engine, settings=settings) == 2

    with Session(sqlite_engine) as session:
        failed = renders.get_render_or_raise(session, broken_id)
        assert failed.status == RenderStatus.failed
        assert "缺失" in (failed.error or "")
        assert renders.get_render_or_raise(session, fine_id).status == RenderStatus.done
        again = _queue(session, broken, 1)
        session.commit()
        assert again == broken_id
        assert renders.get_render_or_raise(session, broken_id).status == RenderStatus.queued


def test_renders_left_running_by_a_dead_process_are_queued_again(engine: Engine) -> None:
    with transaction(engine) as session:
        clip = make_clip(session)
        playlist = service.create_playlist(
            session, data=PlaylistCreate(name="中断", items=[ItemIn(kind="clip", clip_id=clip.id)]), actor=CLI
        )
        render_id = _queue(session, playlist, 1)
    assert jobs.claim_next(engine) == render_id

    assert jobs.requeue_stale(engine, older_than=timedelta(minutes=5)) == []
    assert jobs.requeue_stale(engine, older_than=timedelta(0)) == [render_id]

    with Session(engine) as session:
        assert renders.get_render_or_raise(session, render_id).status == RenderStatus.queued
    assert jobs.claim_next(engine) == render_id
