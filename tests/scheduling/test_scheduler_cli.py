"""``broadcast scheduler``: materialize once, status, and the real process taking and releasing the lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from broadcast.config import Settings, get_settings
from broadcast.scheduling.cli import scheduler_app
from broadcast.scheduling.leader import LEADER_LEASE
from broadcast.scheduling.models import Lease


@pytest.fixture
def env(
    sqlite_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    url = sqlite_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("BROADCAST_DATABASE_URL", url)
    monkeypatch.setenv("BROADCAST_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("BROADCAST_REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield {**os.environ}
    get_settings.cache_clear()


def test_materialize_once_then_status(env: dict[str, str]) -> None:
    runner = CliRunner()
    done = runner.invoke(scheduler_app, ["materialize", "--horizon-h", "24"])
    assert done.exit_code == 0, done.output
    assert "播出单已生成" in done.output
    shown = runner.invoke(scheduler_app, ["status"])
    assert shown.exit_code == 0, shown.output
    assert "没有调度进程持有租约" in shown.output
    assert "播出单已生成到" in shown.output
    assert runner.invoke(scheduler_app, ["materialize", "--horizon-h", "0"]).exit_code == 2


def test_process_takes_the_lease_and_releases_it_on_sigterm(
    env: dict[str, str], sqlite_engine: Engine
) -> None:
    code = "from broadcast.scheduling.cli import scheduler_app; scheduler_app([])"
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        held = None
        while held is None and time.monotonic() < deadline:
            time.sleep(0.1)
            with Session(sqlite_engine) as session:
                held = session.get(Lease, LEADER_LEASE)
        assert held is not None
        process.send_signal(signal.SIGTERM)
        # A stop waits for the jobs that started on winning the lease; allow for a loaded machine.
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "租约已释放" in err
    with Session(sqlite_engine) as session:
        assert session.get(Lease, LEADER_LEASE) is None
