"""The device gateway at city scale: 9,305 simulated speakers on loopback.

Two ``broadcast serve`` processes share one PostgreSQL database and Redis (the city deployment);
the speakers are split across them. Measured in one run:

- push latency: from publishing one signed push (sign, commit, XADD) to its verified receipt on
  every speaker (p50, p99, max), against a bare ``websockets`` server that only broadcasts the
  same frame to the same number of connected speakers (same client code, one process);
- server memory per connection (VmRSS growth of the gateways / connections);
- the connect storm: both gateways killed and restarted, until every speaker is back (their
  back-off included: this is what the city would see), against the bare server killed and
  restarted under the same speakers (same back-off, no authentication, no database).

``BENCH_ENDPOINTS`` overrides the count (default 9,305). If the file limit stops short, the
rows say how many were reached.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from sqlmodel import col, select
from websockets.asyncio.client import connect

from broadcast.auth.audit import CLI
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.db import make_engine, transaction
from broadcast.demo.city import build_demo_city
from broadcast.dispatch.device_auth import provision_tokens
from broadcast.dispatch.envelope import format_time, seal
from broadcast.dispatch.push import RedisPublisher, publish_push
from broadcast.regions.models import Endpoint
from broadcast.simulator.endpoint import VirtualEndpoint
from broadcast.simulator.fleet import Fleet, FleetConfig, raise_fd_limit
from broadcast.simulator.keys import KeySource
from broadcast.simulator.verify import KeyRing
from tests.bench import Row
from tests.simulator.servers import (
    SECRET,
    ServerProcess,
    free_port,
    running_servers,
    server_env,
    temp_database,
)

ENDPOINTS = int(os.environ.get("BENCH_ENDPOINTS", "9305"))
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
CONNECT_RATE = 1500.0
ROUNDS = 3
# Long enough for the whole city to connect and come back on this 2-core machine (the storm is
# the time until ALL are back); if a cap is hit anyway, the rows say how many made it.
CONNECT_WAIT_S = 180.0
STORM_WAIT_S = 180.0
NAME = "gateway"
console = Console(stderr=True)

BARE_SERVER = """
import asyncio, json, sys
from websockets.asyncio.server import broadcast, serve
clients = set()
async def handler(ws):
    if ws.request.path == "/control":
        async for frame in ws:
            broadcast(clients, frame)
        return
    clients.add(ws)
    try:
        welcome = {"type": "welcome", "endpoint": "bare", "ping_interval_s": 3600, "last_seq": 0, "alerts": 0}
        await ws.send(json.dumps(welcome))
        await ws.wait_closed()
    finally:
        clients.discard(ws)
async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), compression=None, max_size=65536,
                     ping_interval=None, backlog=4096):
        await asyncio.Future()
asyncio.run(main())
"""


@dataclass
class Receipts:
    """When each speaker verified each push (perf_counter), by seq."""

    at: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    def hook(self, _endpoint: VirtualEndpoint, payload: dict[str, Any]) -> None:
        self.at[payload["seq"]].append(time.perf_counter())

    async def wait(self, seq: int, count: int, *, timeout: float) -> list[float]:
        deadline = time.perf_counter() + timeout
        while len(self.at[seq]) < count and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        return self.at[seq]


@dataclass
class Latency:
    samples: list[float] = field(default_factory=list)
    missing: int = 0

    def add(self, started: float, received: list[float], expected: int) -> None:
        self.samples.extend(t - started for t in received)
        self.missing += max(0, expected - len(received))

    def quantile(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _seed(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with transaction(engine) as session:
            build_demo_city(session)
            endpoints = list(session.exec(select(Endpoint).order_by(col(Endpoint.id)).limit(ENDPOINTS)).all())
            return [
                token for _, token in provision_tokens(session, endpoints=endpoints, scope="bench", actor=CLI)
            ]
    finally:
        engine.dispose()


def _publish(url: str, data_dir: Path, publisher: RedisPublisher, volume: int) -> int:
    settings = Settings(database_url=url, redis_url=REDIS_URL, secret_key=SECRET, data_dir=data_dir)
    engine = make_engine(url)
    try:
        with transaction(engine) as session:
            envelope = publish_push(
                publisher,
                session,
                targets="all",
                payload_type="volume",
                body={"volume": volume},
                settings=settings,
            )
    finally:
        engine.dispose()
    return int(envelope["payload"]["seq"])


async def _gateway_latency(fleet: Fleet, receipts: Receipts, url: str, data_dir: Path) -> Latency:
    publisher, latency = RedisPublisher(REDIS_URL), Latency()
    for volume in range(50, 50 + ROUNDS):
        connected = fleet.stats.connected
        started = time.perf_counter()
        seq = await asyncio.to_thread(_publish, url, data_dir, publisher, volume)
        latency.add(started, await receipts.wait(seq, connected, timeout=60), connected)
        await asyncio.sleep(1.0)
    return latency


async def _storm(fleet: Fleet, servers: list[ServerProcess]) -> tuple[float, float]:
    """Crash-restart every gateway; seconds until all are back, from the kill and from 'ready'.

    A kill rather than a graceful stop: the storm is the same, and the run stays short.
    """
    target = fleet.stats.connected
    began = time.perf_counter()
    for server in servers:
        server.stop(kill=True)
    for server in servers:
        server.spawn()
    await asyncio.gather(*(asyncio.to_thread(server.wait_ready) for server in servers))
    ready = time.perf_counter()
    await fleet.wait_connected(target, timeout=STORM_WAIT_S)
    done = time.perf_counter()
    return done - began, done - ready


async def _gateway(
    urls: list[str], servers: list[ServerProcess], tokens: list[str], db: str, data: Path
) -> dict[str, Any]:
    rss_before = sum(server.rss_kib() for server in servers)
    receipts = Receipts()
    config = FleetConfig(
        servers=urls, cache_dir=data / "cache", content=False, connect_rate=CONNECT_RATE, seed=1
    )
    async with Fleet(tokens, config, on_push=receipts.hook) as fleet:
        began = time.perf_counter()
        reached = await fleet.wait_connected(timeout=CONNECT_WAIT_S)
        connect_s = time.perf_counter() - began
        await asyncio.sleep(3.0)  # presence writes settle before reading memory
        per_connection = (sum(server.rss_kib() for server in servers) - rss_before) / max(reached, 1)
        latency = await _gateway_latency(fleet, receipts, db, data)
        storm, storm_ready = await _storm(fleet, servers)
        back = fleet.stats.connected
    return {
        "reached": reached,
        "connect_s": connect_s,
        "kib": per_connection,
        "latency": latency,
        "storm": storm,
        "storm_ready": storm_ready,
        "back": back,
    }


def _bare_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _bare_server(port: int) -> subprocess.Popen[bytes]:
    """Start the bare server and wait until it accepts connections."""
    server = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise TimeoutError(f"the bare server on {port} did not start")


async def _bare_storm(fleet: Fleet, server: subprocess.Popen[bytes], port: int) -> tuple[float, int]:
    """Kill and restart the bare server: seconds from 'accepting' until all are back, and how many."""
    target = fleet.stats.connected
    server.kill()
    server.wait(timeout=20)
    deadline = time.perf_counter() + 30
    while fleet.stats.connected and time.perf_counter() < deadline:  # every speaker saw it go
        await asyncio.sleep(0.01)
    restarted = await asyncio.to_thread(_bare_server, port)
    try:
        ready = time.perf_counter()
        await fleet.wait_connected(target, timeout=STORM_WAIT_S)
        return time.perf_counter() - ready, fleet.stats.connected
    finally:
        restarted.kill()
        restarted.wait(timeout=20)


async def _bare(tokens: list[str], data: Path) -> dict[str, Any]:
    port = free_port()
    server = await asyncio.to_thread(_bare_server, port)
    try:
        key = Ed25519PrivateKey.generate()
        async with httpx.AsyncClient() as unused:
            keys = KeySource(unused)
            keys.ring = KeyRing({"bare": key.public_key()})
            rss_before = _bare_rss_kib(server.pid)
            receipts = Receipts()
            config = FleetConfig(
                servers=[f"http://127.0.0.1:{port}"],
                cache_dir=data / "cache",
                content=False,
                connect_rate=CONNECT_RATE,
                seed=1,
            )
            # The control connection first: queued behind 9,305 handshakes it timed out on a busy machine.
            async with (
                connect(f"ws://127.0.0.1:{port}/control", compression=None) as control,
                Fleet(tokens, config, on_push=receipts.hook, keys=keys) as fleet,
            ):
                began = time.perf_counter()
                reached = await fleet.wait_connected(timeout=CONNECT_WAIT_S)
                connect_s = time.perf_counter() - began
                await asyncio.sleep(1.0)
                per_connection = (_bare_rss_kib(server.pid) - rss_before) / max(reached, 1)
                latency = Latency()
                for seq in range(1, ROUNDS + 1):
                    frame = _bare_frame(key, seq)
                    started = time.perf_counter()
                    await control.send(frame)
                    latency.add(started, await receipts.wait(seq, reached, timeout=60), reached)
                    await asyncio.sleep(1.0)
                await control.close()
                storm_ready, back = await _bare_storm(fleet, server, port)
        return {
            "reached": reached,
            "connect_s": connect_s,
            "kib": per_connection,
            "latency": latency,
            "storm_ready": storm_ready,
            "back": back,
        }
    finally:
        server.kill()
        server.wait(timeout=20)


def _bare_frame(key: Ed25519PrivateKey, seq: int) -> str:
    now = utc_now()
    payload = {
        "type": "volume",
        "volume": 60,
        "seq": seq,
        "issued_at": format_time(now),
        "not_after": format_time(now.replace(year=now.year + 1)),
    }
    return json.dumps({"type": "push", "envelope": seal(payload, kid="bare", private_key=key)})


def _rows(gateway: dict[str, Any], bare: dict[str, Any]) -> list[Row]:
    n, g, b = gateway["reached"], gateway["latency"], bare["latency"]
    short = "" if n == ENDPOINTS else f" (only {n} of {ENDPOINTS} reached)"
    lost = f", missed {g.missing}" if g.missing else ""
    back = f"{gateway['back']} of {n} back"
    capped = "" if gateway["back"] >= n else f" (gave up {STORM_WAIT_S:.0f} s after ready)"
    bare_back = "" if bare["back"] >= bare["reached"] else f"; bare: only {bare['back']} back"
    rows = [
        Row(
            NAME,
            f"connect {n} speakers at {CONNECT_RATE:.0f}/s{short} (vs bare websockets); gateway memory "
            f"{gateway['kib']:.1f} KiB/connection (bare {bare['kib']:.1f} KiB)",
            gateway["connect_s"],
            bare["connect_s"],
        ),
        *(
            Row(
                NAME,
                f"push -> all {n}: {label} (2 gateways+Redis vs bare websockets){lost}",
                g.quantile(q),
                b.quantile(q),
            )
            for label, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
        ),
        Row(NAME, f"connect storm: kill and restart both gateways -> {back}{capped}", gateway["storm"]),
        Row(
            NAME,
            f"connect storm: gateways ready -> {back}{capped} (vs bare websockets restarted{bare_back})",
            gateway["storm_ready"],
            bare["storm_ready"],
        ),
    ]
    console.print(
        f"[bold]gateway memory per connection: {gateway['kib']:.1f} KiB "
        f"(bare websockets {bare['kib']:.1f} KiB)[/bold]"
    )
    return rows


def run() -> list[Row]:
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp, temp_database() as db:
        data = Path(tmp) / "data"
        tokens = _seed(db)
        env = server_env(database_url=db, redis_url=REDIS_URL, data_dir=data)
        with running_servers(2, env=env, log_dir=Path(tmp)) as servers:
            gateway = asyncio.run(_gateway([s.url for s in servers], servers, tokens, db, data))
        bare = asyncio.run(_bare(tokens, data))
    return _rows(gateway, bare)
