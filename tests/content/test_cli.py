"""``broadcast clips upload`` and ``broadcast clips list`` against a real database file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from broadcast.cli import app
from broadcast.config import Settings, get_settings
from broadcast.content.models import Clip
from broadcast.content.store import get_store


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, sqlite_engine: Engine, settings: Settings) -> Iterator[Settings]:
    monkeypatch.setenv("BROADCAST_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("BROADCAST_AUDIO_STORE_DIR", str(settings.store_dir))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_upload_then_list(cli_env: Settings, sqlite_engine: Engine, recordings: dict[str, Path]) -> None:
    runner = CliRunner()
    argv = ["clips", "upload", str(recordings["m4a"]), "--title", "村委会通知", "--tag", "通知"]
    first = runner.invoke(app, argv)
    assert first.exit_code == 0, first.output
    assert "已上传素材" in first.output
    again = runner.invoke(app, argv)
    assert again.exit_code == 0
    assert "未重复保存" in again.output
    listed = runner.invoke(app, ["clips", "list", "--tag", "通知"])
    assert listed.exit_code == 0
    assert "村委会通知" in listed.output
    assert "共 1 条" in listed.output
    with Session(sqlite_engine) as session:
        (clip,) = session.exec(select(Clip)).all()
    assert clip.source_format == "m4a/aac"
    assert get_store(cli_env).path_for(clip.blob_sha256).is_file()


def test_upload_of_a_text_file_fails_with_the_reason(cli_env: Settings, tmp_path: Path) -> None:
    fake = tmp_path / "notice.mp3"
    fake.write_text("not audio " * 40)
    result = CliRunner().invoke(app, ["clips", "upload", str(fake), "--title", "x"])
    assert result.exit_code == 1
    assert "不是音频文件" in result.output
