"""Device connections held by one gateway process: bounded send queues, the registry, flood limits.

Each connection has a bounded queue and one writer task. Fan-out only ever does a
``put_nowait``: a device that stops reading fills its own queue and is closed (4408); nobody
waits for it. Everything here runs on the event loop and never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from starlette.websockets import WebSocket

from broadcast.clock import utc_now

log = logging.getLogger(__name__)

KeyT = TypeVar("KeyT", bound=Hashable)

CLOSE_TIMEOUT_S = 1.0


class CloseCode:
    normal = 1000
    going_away = 1001
    too_big = 1009
    try_again_later = 1013
    bad_frames = 4400
    unauthorized = 4401
    forbidden = 4403
    stuck = 4408
    replaced = 4409
    flood = 4429


@dataclass(eq=False)
class Connection:
    endpoint_id: int
    code: str
    address: str | None
    websocket: WebSocket
    queue_size: int
    on_frame: Callable[[Connection], None] = field(repr=False)
    queue: asyncio.Queue[str] = field(init=False, repr=False)
    last_frame_mono: float = field(default_factory=time.monotonic)
    last_frame_at: datetime = field(default_factory=utc_now)
    bad_frames: int = 0
    acked_seq: int | None = None
    reported: dict[str, Any] = field(default_factory=dict)
    close_code: int | None = None
    close_reason: str | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.queue_size)

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    def touch(self) -> None:
        self.last_frame_mono = time.monotonic()
        self.last_frame_at = utc_now()
        self.on_frame(self)

    def offer(self, frame: str) -> bool:
        """Queue a frame; a full queue means the device is not reading: drop it (4408)."""
        if self.closing:
            return False
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.close(CloseCode.stuck, "stuck")
            return False
        return True

    async def write_loop(self) -> None:
        while True:
            frame = await self.queue.get()
            await self.websocket.send_text(frame)

    def attach(self, *tasks: asyncio.Task[Any]) -> None:
        self._tasks.extend(tasks)

    def close(self, code: int, reason: str) -> None:
        """Stop this connection now: later frames are dropped, the close frame is best-effort."""
        if self.closing:
            return
        self.close_code, self.close_reason = code, reason
        for task in self._tasks:
            task.cancel()
        asyncio.get_running_loop().create_task(self._send_close(code))

    async def _send_close(self, code: int) -> None:
        # A device that does not read may never take the close frame: give it a second.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code), CLOSE_TIMEOUT_S)


class Registry:
    """endpoint id -> its one live connection in this process."""

    def __init__(self) -> None:
        self._by_endpoint: dict[int, Connection] = {}

    def __len__(self) -> int:
        return len(self._by_endpoint)

    def get(self, endpoint_id: int) -> Connection | None:
        return self._by_endpoint.get(endpoint_id)

    def connections(self) -> list[Connection]:
        return list(self._by_endpoint.values())

    def register(self, connection: Connection) -> Connection | None:
        """Make this the endpoint's connection; the one it replaces is closed with 4409."""
        old = self._by_endpoint.get(connection.endpoint_id)
        self._by_endpoint[connection.endpoint_id] = connection
        if old is not None:
            old.close(CloseCode.replaced, "replaced")
        return old

    def unregister(self, connection: Connection) -> bool:
        """Forget it if it is still the endpoint's connection (a replaced one is not)."""
        if self._by_endpoint.get(connection.endpoint_id) is connection:
            del self._by_endpoint[connection.endpoint_id]
            return True
        return False

    def deliver(self, targets: Iterable[int] | str, frame: str) -> int:
        """Queue the frame for the targets connected here; how many took it."""
        if targets == "all":
            chosen: Iterable[Connection] = self.connections()
        else:
            found = (self._by_endpoint.get(i) for i in targets if isinstance(i, int))
            chosen = [c for c in found if c is not None]
        return sum(1 for connection in chosen if connection.offer(frame))


class FloodLimiter(Generic[KeyT]):
    """More than ``limit`` connects with one key within ``window_s`` are refused (4429).

    The gateway keys by token hash, so it refuses before any database work. Refused attempts
    count too, so a device that keeps hammering stays refused until it backs off.
    """

    def __init__(self, *, limit: int = 10, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._attempts: dict[KeyT, deque[float]] = {}

    def allow(self, key: KeyT, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        attempts = self._attempts.setdefault(key, deque())
        while attempts and attempts[0] <= now - self.window_s:
            attempts.popleft()
        attempts.append(now)
        return len(attempts) <= self.limit

    def forget_idle(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        idle = [k for k, v in self._attempts.items() if not v or v[-1] <= now - self.window_s]
        for key in idle:
            del self._attempts[key]
