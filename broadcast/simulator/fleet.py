"""Many virtual speakers in one event loop: shared HTTP pools, one audio cache, staggered connects."""

from __future__ import annotations

import asyncio
import csv
import random
import resource
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import httpx

from broadcast.simulator.audio import AudioCache
from broadcast.simulator.endpoint import Options, PushHook, Server, VirtualEndpoint
from broadcast.simulator.keys import KeySource
from broadcast.simulator.stats import FleetStats
from broadcast.simulator.timing import VirtualClock

WS_PATH = "/device/v1/ws"


def raise_fd_limit() -> int:
    """Lift this process's open-file limit to its hard limit (one socket per speaker)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def ws_url(server: str) -> str:
    parts = urlsplit(server)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + WS_PATH, "", ""))


def read_tokens(path: Path) -> list[tuple[str, str]]:
    """(endpoint code, token) pairs from a CSV with a header naming a code and a token column."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return []
    columns = {name.strip().lower(): name for name in rows[0]}
    code_col = next((columns[c] for c in ("endpoint_code", "code", "endpoint") if c in columns), None)
    token_col = next((columns[c] for c in ("token", "secret", "device_token") if c in columns), None)
    if token_col is None:
        raise ValueError(f"{path}: no token column (expected one of token, secret, device_token)")
    return [((row[code_col] if code_col else ""), row[token_col].strip()) for row in rows if row[token_col]]


@dataclass(frozen=True)
class FleetConfig:
    servers: Sequence[str]
    cache_dir: Path
    speed: float = 1.0
    faults: float = 0.0
    connect_rate: float = 400.0
    # Speakers started but not yet welcomed: the launch waits for the server rather than
    # piling up handshakes that time out and retry.
    max_pending: int = 200
    content: bool = True
    seed: int | None = None
    http_connections: int = 64
    upload_interval_s: float = 5.0


@dataclass
class Fleet:
    """``async with Fleet(tokens, config) as fleet``: speakers start at ``connect_rate`` per second.

    Speaker ``i`` talks to ``servers[i % len(servers)]``, so a fleet can span gateway processes.
    """

    tokens: Sequence[str]
    config: FleetConfig
    on_push: PushHook | None = None
    stats: FleetStats = field(default_factory=FleetStats)
    endpoints: list[VirtualEndpoint] = field(default_factory=list)
    keys: KeySource | None = None
    _clients: list[httpx.AsyncClient] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _launcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        raise_fd_limit()
        limits = httpx.Limits(
            max_connections=self.config.http_connections,
            max_keepalive_connections=self.config.http_connections,
        )
        timeout = httpx.Timeout(30.0, pool=None)
        servers = []
        for base in self.config.servers:
            client = httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout)
            self._clients.append(client)
            servers.append(Server(http=client, ws_url=ws_url(base)))
        if self.keys is None:
            self.keys = KeySource(self._clients[0])
            await self.keys.refresh(force=True)
        rng = random.Random(self.config.seed)
        clock = VirtualClock(speed=self.config.speed)
        cache = AudioCache(self.config.cache_dir)
        options = Options(
            content=self.config.content,
            faults=self.config.faults,
            upload_interval_s=self.config.upload_interval_s,
        )
        for i, token in enumerate(self.tokens):
            endpoint = VirtualEndpoint(
                token,
                server=servers[i % len(servers)],
                keys=self.keys,
                clock=clock,
                cache=cache,
                stats=self.stats,
                options=options,
                rng=random.Random(rng.random()),
                on_push=self.on_push,
            )
            self.endpoints.append(endpoint)
        self.stats.endpoints = len(self.endpoints)
        self._launcher = asyncio.create_task(self._launch())

    async def _launch(self) -> None:
        """Start speakers at ``connect_rate`` per second, at most ``max_pending`` handshakes at a time.

        A whole city at once is a SYN flood; a fixed rate above what the server absorbs makes
        handshakes time out and retry. After the launch nothing is coordinated (a gateway
        restart is a real storm, spread only by the back-off's jitter).
        """
        interval = 1.0 / self.config.connect_rate
        loop = asyncio.get_running_loop()
        began = loop.time()
        for i, endpoint in enumerate(self.endpoints):
            delay = began + i * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            while self._pending() >= self.config.max_pending:
                await asyncio.sleep(0.01)
            self._tasks.append(asyncio.create_task(endpoint.run()))

    def _pending(self) -> int:
        return len(self._tasks) - self.stats.connects - self.stats.auth_failures

    async def wait_connected(self, count: int | None = None, *, timeout: float) -> int:
        """Wait until ``count`` speakers (default: all) are connected; returns how many are."""
        target = len(self.endpoints) if count is None else count
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.stats.connected < target and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return self.stats.connected

    async def drain(self, *, timeout: float) -> int:
        """Give buffered events up to ``timeout`` seconds to upload; returns how many are left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := self.uploadable()) and loop.time() < deadline:
            await asyncio.sleep(0.1)
        return left

    def uploadable(self) -> int:
        now = datetime.now(UTC)
        return sum(len(e.outbox.batch(real_now=now)) for e in self.endpoints)

    def refresh_gauges(self) -> None:
        self.stats.events_pending = sum(len(e.outbox) for e in self.endpoints)

    async def stop(self) -> None:
        tasks = [t for t in (self._launcher, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in self._clients:
            await client.aclose()
        self.refresh_gauges()
