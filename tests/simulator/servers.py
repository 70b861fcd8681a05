"""Real ``broadcast serve`` processes for the simulator test and the gateway benchmark.

Each run gets its own PostgreSQL database (created and dropped here) and the real Redis; the
processes share both, exactly like two gateway workers of a city deployment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from broadcast import migrations
from broadcast.db import make_engine

PG_ADMIN_URL = os.environ.get("BROADCAST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BROADCAST = str(Path(sys.executable).parent / "broadcast")
SECRET = "simulator-test-secret-key-0123456789-abcdefghij"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def temp_database() -> Iterator[str]:
    """A migrated PostgreSQL database of its own, dropped afterwards; yields its URL."""
    name = f"broadcast_sim_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        engine = make_engine(url)
        migrations.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def server_env(*, database_url: str, redis_url: str | None, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
    env.update(
        BROADCAST_DATABASE_URL=database_url,
        BROADCAST_DATA_DIR=str(data_dir),
        BROADCAST_AUDIO_STORE_DIR=str(data_dir / "store"),
        BROADCAST_SECRET_KEY=SECRET,
        BROADCAST_RENDER_WORKERS="0",
    )
    if redis_url:
        env["BROADCAST_REDIS_URL"] = redis_url
    return env


@dataclass
class ServerProcess:
    """One ``broadcast serve`` on a loopback port, logging to a file."""

    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        command = [BROADCAST, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def start(self, *, timeout: float = 90.0) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server on {self.port} exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(
            f"server on {self.port} not ready after {timeout} s: {self.log.read_text()[-3000:]}"
        )

    def rss_kib(self) -> int:
        """Resident memory of the server process (VmRSS), in KiB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def running_servers(count: int, *, env: dict[str, str], log_dir: Path) -> Iterator[list[ServerProcess]]:
    servers = [ServerProcess(port=free_port(), env=env, log=log_dir / f"server{i}.log") for i in range(count)]
    try:
        for server in servers:
            server.spawn()  # all at once: each spends seconds importing
        for server in servers:
            server.wait_ready(90.0)
        yield servers
    finally:
        for server in servers:
            server.stop()
