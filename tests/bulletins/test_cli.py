"""``broadcast bulletins preview`` against a real database file and the real offline engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from broadcast.cli import app
from broadcast.config import Settings, get_settings
from broadcast.content.models import Bulletin
from tests import builders


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, sqlite_engine: Engine, settings: Settings) -> Iterator[Settings]:
    monkeypatch.setenv("BROADCAST_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("BROADCAST_AUDIO_STORE_DIR", str(settings.store_dir))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def bulletin_and_village(sqlite_engine: Engine) -> tuple[int, str]:
    with Session(sqlite_engine, expire_on_commit=False) as session:
        town = builders.make_town(session, name="青山镇")
        village = builders.make_village(session, town=town, name="桃花村")
        bulletin = Bulletin(
            title="防火", text="{town}{village}的村民朋友们，火险等级{level}级。", custom_fields=["level"]
        )
        session.add(bulletin)
        session.commit()
        return bulletin.id or 0, village.code


def test_preview_writes_the_audio(
    cli_env: Settings, bulletin_and_village: tuple[int, str], tmp_path: Path
) -> None:
    bulletin_id, village = bulletin_and_village
    out = tmp_path / "preview.mp3"
    argv = [
        "bulletins",
        "preview",
        str(bulletin_id),
        "--village",
        village,
        "--field",
        "level=4",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "青山镇桃花村的村民朋友们，火险等级四级。" in result.output
    audio = out.read_bytes()
    assert len(audio) > 1000
    assert audio.startswith(b"ID3") or (audio[0] == 0xFF and audio[1] & 0xE0 == 0xE0)  # an MP3 frame


def test_preview_errors_are_reported(
    cli_env: Settings, bulletin_and_village: tuple[int, str], tmp_path: Path
) -> None:
    bulletin_id, village = bulletin_and_village
    out = tmp_path / "preview.mp3"
    result = CliRunner().invoke(
        app, ["bulletins", "preview", str(bulletin_id), "--village", village, "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "{level}" in result.output
    assert not out.exists()
    missing = CliRunner().invoke(app, ["bulletins", "preview", "999", "--out", str(out)])
    assert missing.exit_code == 1
    assert "999" in missing.output
