"""``broadcast playlists render`` and ``list`` against a real database file and store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from broadcast.auth.audit import CLI
from broadcast.cli import app
from broadcast.config import Settings, get_settings
from broadcast.content.audio import probe
from broadcast.content.store import get_store
from broadcast.db import transaction
from broadcast.playlists import service
from broadcast.playlists.models import Render, RenderStatus
from broadcast.playlists.schemas import ItemIn, PlaylistCreate
from tests.playlists.conftest import make_bulletin, make_clip, recording, stored_clip


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, sqlite_engine: Engine, settings: Settings) -> Iterator[Settings]:
    monkeypatch.setenv("BROADCAST_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("BROADCAST_AUDIO_STORE_DIR", str(settings.store_dir))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _playlist(engine: Engine, settings: Settings, source: Path | None) -> int:
    with transaction(engine) as session:
        store = get_store(settings)
        clip = (
            stored_clip(session, store=store, settings=settings, source=source)
            if source
            else make_clip(session)
        )
        bulletin = make_bulletin(session, text="今天的防火等级是{level}。", fields=["level"])
        items = [
            ItemIn(kind="clip", clip_id=clip.id),
            ItemIn(kind="silence", silence_ms=300),
            ItemIn(kind="bulletin", bulletin_id=bulletin.id),
        ]
        playlist = service.create_playlist(
            session, data=PlaylistCreate(name="命令行节目", items=items), actor=CLI
        )
        return playlist.id or 0


def test_render_writes_the_program_and_prints_the_manifest(
    cli_env: Settings, sqlite_engine: Engine, tmp_path: Path
) -> None:
    playlist_id = _playlist(sqlite_engine, cli_env, recording(tmp_path / "r.wav", seconds=2))
    out = tmp_path / "program.mp3"
    argv = ["playlists", "render", str(playlist_id), "--field", "level=三级", "--out", str(out)]

    result = CliRunner().invoke(app, argv)

    assert result.exit_code == 0, result.output
    assert "总时长" in result.output
    assert "silence" in result.output
    with Session(sqlite_engine) as session:
        render = session.exec(select(Render)).one()
    assert render.status == RenderStatus.done
    assert abs((probe(out, timeout_s=30).duration_ms or 0) - (render.duration_ms or 0)) <= 50
    listed = CliRunner().invoke(app, ["playlists", "list"])
    assert "命令行节目" in listed.output


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        pytest.param(["--field", "level"], "名称=值", id="field without value"),
        pytest.param([], "level", id="missing custom field"),
        pytest.param(["--field", "level=一", "--revision", "7"], "第 7 版", id="unknown revision"),
        pytest.param(["--field", "level=一", "--date", "2026-13-01"], "month", id="bad date"),
    ],
)
def test_render_refuses_bad_arguments(
    cli_env: Settings, sqlite_engine: Engine, extra: list[str], needle: str
) -> None:
    playlist_id = _playlist(sqlite_engine, cli_env, None)
    result = CliRunner().invoke(app, ["playlists", "render", str(playlist_id), *extra])

    assert result.exit_code == 1
    assert needle in result.output
