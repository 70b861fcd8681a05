"""One speaker's WebSocket to the gateway: welcome, pings, signed pushes, acks, reconnects."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from broadcast.simulator.stats import FleetStats
from broadcast.simulator.timing import Backoff

MAX_FRAME = 64 * 1024
WELCOME_TIMEOUT_S = 15.0
# A connection with no frame for this many ping intervals is dead (the server pings every interval).
SILENCE_PINGS = 3
# A connection that stayed up this long resets the back-off to its first step.
STABLE_AFTER_S = 30.0
# Close codes after which reconnecting with the same token cannot help.
FATAL_CLOSES = frozenset({4401, 4403})
FLOOD_CLOSE = 4429
BUSY_CLOSE = 1013
# The server is going away or restarting (1012 is what the HTTP server sends as it stops).
RESTART_CLOSES = frozenset({1001, 1012})


class ChannelClosed(Exception):
    """The server refused the token: stop this speaker (a person must fix its credentials)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"closed with {code}")
        self.code = code


FrameHandler = Callable[[dict[str, Any]], Awaitable[None]]


class Channel:
    """Keeps one connection open for as long as the network is up, forever reconnecting.

    ``on_frame`` gets every server frame except pings (answered here); ``on_welcome`` runs
    after each successful (re)connection.
    """

    def __init__(
        self,
        *,
        url: str,
        token: str,
        stats: FleetStats,
        backoff: Backoff,
        network_up: asyncio.Event,
        on_frame: FrameHandler,
        on_welcome: FrameHandler,
    ) -> None:
        self.url = url
        self._token = token
        self._stats = stats
        self._backoff = backoff
        self._network_up = network_up
        self._on_frame = on_frame
        self._on_welcome = on_welcome
        self._ws: ClientConnection | None = None
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Connect, serve, back off, repeat; returns only when the token is refused."""
        while True:
            await self._network_up.wait()
            started = time.monotonic()
            code, welcomed = await self._session()
            if code is not None:
                self._stats.close_codes[code] += 1
            await asyncio.sleep(self._delay_after(code, welcomed, time.monotonic() - started))

    def _delay_after(self, code: int | None, welcomed: bool, lasted_s: float) -> float:
        """How long to wait before the next attempt (§7); raises on a refused token."""
        if code in FATAL_CLOSES:
            self._stats.auth_failures += 1
            raise ChannelClosed(code)
        if code == BUSY_CLOSE:
            return self._backoff.busy_delay()
        if welcomed:
            self._backoff.connected()
        if lasted_s >= STABLE_AFTER_S:
            self._backoff.reset()
        if code == FLOOD_CLOSE:
            self._backoff.saturate()
        elif welcomed and (code is None or code in RESTART_CLOSES):
            self._backoff.server_went_away()
        return self._backoff.next_delay()

    async def send(self, frame: dict[str, Any]) -> None:
        """Send if connected; a frame for a closed connection is dropped (acks are best effort)."""
        ws = self._ws
        if ws is None:
            return
        try:
            await ws.send(json.dumps(frame, ensure_ascii=False))
        except ConnectionClosed:
            return

    def drop(self) -> None:
        """Cut the connection without a closing handshake, as a network outage would."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def _session(self) -> tuple[int | None, bool]:
        """One connection's life: the server's close code (None: the connection never opened, or
        ended without a close frame) and whether it got its welcome."""
        headers = {"Authorization": f"Bearer {self._token}"}
        code: int | None = None
        try:
            async with connect(
                self.url,
                additional_headers=headers,
                compression=None,
                max_size=MAX_FRAME,
                ping_interval=None,
                open_timeout=30,
                close_timeout=5,
                proxy=None,  # else every connect reads the whole environment looking for one
            ) as ws:
                self._ws = ws
                await self._serve(ws)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
        except InvalidStatus as exc:
            # A gateway may refuse the handshake itself instead of closing after it.
            code = {401: 4401, 403: 4403}.get(exc.response.status_code)
        except (OSError, InvalidHandshake, TimeoutError, json.JSONDecodeError):
            code = None
        finally:
            self._ws = None
            welcomed = self.connected.is_set()
            if welcomed:
                self.connected.clear()
                self._stats.connected -= 1
                self._stats.disconnects += 1
        return code, welcomed

    async def _serve(self, ws: ClientConnection) -> None:
        async with asyncio.timeout(WELCOME_TIMEOUT_S):
            welcome = json.loads(await ws.recv())
        if welcome.get("type") != "welcome":
            await ws.close(4400, "expected welcome")
            return
        silence = SILENCE_PINGS * float(welcome.get("ping_interval_s", 20))
        self._stats.connects += 1
        self._stats.connected += 1
        self.connected.set()
        await self._on_welcome(welcome)
        while True:
            async with asyncio.timeout(silence):
                raw = await ws.recv()
            frame = json.loads(raw)
            if not isinstance(frame, dict):
                continue
            if frame.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong", "t": frame.get("t")}))
            else:
                await self._on_frame(frame)
