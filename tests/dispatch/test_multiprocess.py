"""Two real ``broadcast serve`` processes sharing one PostgreSQL database and one Redis.

A device connected to either process receives what the other publishes (each reads the same
Redis Stream), and presence written by both lands in the shared database.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session, col, select
from websockets.sync.client import ClientConnection, connect

from broadcast import migrations
from broadcast.auth.audit import CLI
from broadcast.auth.models import Role
from broadcast.db import make_engine
from broadcast.deps import ACCESS_COOKIE
from broadcast.regions.models import Endpoint, EndpointStatus
from broadcast.regions.tokens import issue_token
from tests import builders
from tests.conftest import PG_ADMIN_URL, TEST_SECRET
from tests.console.conftest import access_token
from tests.dispatch.live import free_port, wait_for_health

pytestmark = pytest.mark.slow
BROADCAST = Path(sys.executable).parent / "broadcast"
STARTUP_TIMEOUT_S = 120  # a cold start imports the whole app; generous for a loaded CI machine


@dataclass
class World:
    engine: Engine
    redis_url: str
    cookie: str
    codes: list[str]
    tokens: list[str]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A fresh PostgreSQL database (migrated, one admin, two endpoints) and a Redis database."""
    name = f"broadcast_mp_{secrets.token_hex(6)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    engine = make_engine(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    # Redis databases 9-14: 6-8 belong to the alert, simulator and bench runs, which may run beside it.
    redis_url = f"redis://127.0.0.1:6379/{secrets.randbelow(6) + 9}"
    try:
        migrations.upgrade(engine)
        with Session(engine, expire_on_commit=False) as session:
            user = builders.make_user(session, role=Role.admin)
            village = builders.make_village(session, town=builders.make_town(session))
            endpoints = [builders.make_endpoint(session, village=village) for _ in range(2)]
            tokens = [issue_token(session, endpoint=e, actor=CLI)[1] for e in endpoints]
            session.commit()
        yield World(engine, redis_url, access_token(user), [e.code for e in endpoints], tokens)
    finally:
        redis.Redis.from_url(redis_url).delete("broadcast:push")
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _environment(world: World, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "BROADCAST_DATABASE_URL": world.engine.url.render_as_string(hide_password=False),
        "BROADCAST_REDIS_URL": world.redis_url,
        "BROADCAST_SECRET_KEY": TEST_SECRET,
        "BROADCAST_DATA_DIR": str(data_dir),
        "BROADCAST_RENDER_WORKERS": "0",
    }


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextmanager
def broadcast_serve(world: World, data_dirs: list[Path]) -> Iterator[list[str]]:
    """``broadcast serve`` processes on free ports, started together; always stopped afterwards.

    Starting together is safe: the database is already migrated and has an admin.
    """
    processes: list[subprocess.Popen[bytes]] = []
    hosts: list[str] = []
    try:
        for data_dir in data_dirs:
            data_dir.mkdir(parents=True, exist_ok=True)
            hosts.append(f"127.0.0.1:{free_port()}")
            with (data_dir / "server.log").open("w") as log:
                command = [str(BROADCAST), "serve", "--host", "127.0.0.1", "--port", hosts[-1].split(":")[1]]
                processes.append(
                    subprocess.Popen(
                        command, env=_environment(world, data_dir), stdout=log, stderr=subprocess.STDOUT
                    )
                )
        for host in hosts:
            wait_for_health(f"http://{host}", timeout_s=STARTUP_TIMEOUT_S)
        yield hosts
    finally:
        for process in processes:
            _stop(process)


@contextmanager
def _device(host: str, token: str) -> Iterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {token}"}
    with connect(f"ws://{host}/device/v1/ws", additional_headers=headers) as device:
        assert json.loads(device.recv(timeout=5))["type"] == "welcome"
        yield device


def _receives(device: ClientConnection, *, seq: int) -> bool:
    """Whether the device gets our rundown_changed push (another test's, on a shared Redis, is skipped)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        frame = json.loads(device.recv(timeout=max(0.1, deadline - time.monotonic())))
        payload = frame["envelope"]["payload"] if frame["type"] == "push" else {}
        if (payload.get("type"), payload.get("seq")) == ("rundown_changed", seq):
            return True
    return False


def _refresh(host: str, world: World, code: str) -> int:
    response = httpx.post(
        f"http://{host}/console/endpoints/{code}/refresh", cookies={ACCESS_COOKIE: world.cookie}, timeout=10
    )
    assert response.status_code == 200, response.text
    return int(response.text.split("推送序号 ")[1].split("）")[0])


def test_each_process_delivers_what_the_other_publishes(world: World, tmp_path: Path) -> None:
    with ExitStack() as stack:
        a, b = stack.enter_context(broadcast_serve(world, [tmp_path / "a", tmp_path / "b"]))
        on_a = stack.enter_context(_device(a, world.tokens[0]))
        on_b = stack.enter_context(_device(b, world.tokens[1]))

        for publisher, device, code in ((b, on_a, world.codes[0]), (a, on_b, world.codes[1])):
            assert _receives(device, seq=_refresh(publisher, world, code))

        with Session(world.engine) as session:
            endpoints = session.exec(select(Endpoint).where(col(Endpoint.code).in_(world.codes))).all()
            assert {e.status for e in endpoints} == {EndpointStatus.online}
            assert {e.address for e in endpoints} == {"127.0.0.1"}
