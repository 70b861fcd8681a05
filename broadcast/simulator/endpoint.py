"""One virtual speaker speaking /device/v1 exactly as docs/device-protocol.md describes it."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from broadcast.simulator.alerts import AlertBook, AlertPlay
from broadcast.simulator.audio import AudioCache
from broadcast.simulator.channel import Channel, ChannelClosed
from broadcast.simulator.keys import KeySource
from broadcast.simulator.outbox import Outbox
from broadcast.simulator.player import Player
from broadcast.simulator.stats import FleetStats
from broadcast.simulator.timing import Backoff, VirtualClock
from broadcast.simulator.verify import (
    PUSH_WINDOW,
    RUNDOWN_WINDOW,
    Refusal,
    Refused,
    ReplayWindow,
    verify_envelope,
)

FIRMWARE = "sim-1.0"


class Stopped(Exception):
    """The server refused this speaker's token (401/403): it stops until a person acts."""


@dataclass(frozen=True)
class Options:
    content: bool = True  # rundown, audio, playing and events; False: the push channel only
    faults: float = 0.0  # chance per real minute of a network outage
    rundown_refresh_s: float = 15 * 60
    upload_interval_s: float = 5.0


@dataclass(frozen=True)
class Server:
    """Where a speaker connects: one HTTP client (shared pool) and the WebSocket URL."""

    http: httpx.AsyncClient
    ws_url: str


PushHook = Callable[["VirtualEndpoint", dict[str, Any]], None]


class VirtualEndpoint:
    def __init__(
        self,
        token: str,
        *,
        server: Server,
        keys: KeySource,
        clock: VirtualClock,
        cache: AudioCache,
        stats: FleetStats,
        options: Options,
        rng: random.Random,
        on_push: PushHook | None = None,
    ) -> None:
        self.code: str | None = None
        self.stopped = False  # the server refused the token
        self.volume = 80
        self.windows = {"push": ReplayWindow(PUSH_WINDOW), "rundown": ReplayWindow(RUNDOWN_WINDOW)}
        self.accepted_pushes: list[dict[str, Any]] = []
        self.outbox = Outbox()
        self.alert_book = AlertBook()
        self._token = token
        self._server = server
        self._keys = keys
        self._stats = stats
        self._options = options
        self._rng = rng
        self._on_push = on_push
        self._auth = {"Authorization": f"Bearer {token}"}
        self._network_up = asyncio.Event()
        self._network_up.set()
        self._refetch = asyncio.Event()
        self._refetch_alerts = asyncio.Event()
        self._etag: str | None = None
        self.player = Player(clock=clock, cache=cache, outbox=self.outbox, stats=stats)
        self.channel = Channel(
            url=server.ws_url,
            token=token,
            stats=stats,
            backoff=Backoff(rng=rng),
            network_up=self._network_up,
            on_frame=self._on_frame,
            on_welcome=self._on_welcome,
        )
        self._cache = cache

    async def run(self) -> None:
        """Live until cancelled, or until the server refuses the token."""
        loops = [self._guard(self.channel.run()), self.player.run(), self._guard(self._alerts_loop())]
        if self._options.content:
            loops += [self._guard(self._rundown_loop()), self._guard(self._upload_loop())]
        if self._options.faults > 0:
            loops.append(self._fault_loop())
        try:
            async with asyncio.TaskGroup() as group:
                for loop in loops:
                    group.create_task(loop)
        except* Stopped:
            self.stopped = True

    async def _guard(self, loop: Any) -> None:
        try:
            await loop
        except ChannelClosed as exc:
            raise Stopped(str(exc)) from exc

    # --- pushes -------------------------------------------------------------------------------

    async def _on_welcome(self, welcome: dict[str, Any]) -> None:
        self.code = welcome.get("endpoint", self.code)
        self._refetch.set()
        # §4.5: fetch the alerts when the welcome counts some, or does not say (an older gateway).
        alerts = welcome.get("alerts")
        if not isinstance(alerts, int) or alerts > 0:
            self._refetch_alerts.set()
        await self.channel.send(self._status())

    def _status(self) -> dict[str, Any]:
        playing = self.player.playing
        return {
            "type": "status",
            "firmware": FIRMWARE,
            "volume": self.volume,
            "playing": {"slot_id": playing} if playing is not None else None,
        }

    async def _on_frame(self, frame: dict[str, Any]) -> None:
        if frame.get("type") != "push":
            if frame.get("type") == "error":
                self._stats.refusals["server_error_frame"] += 1
            return
        payload = await self._verify(frame.get("envelope"), stream="push")
        if payload is None:
            return
        self.accepted_pushes.append(payload)
        self._stats.pushes_accepted += 1
        if self._on_push is not None:
            self._on_push(self, payload)
        kind = payload["type"]
        if kind == "rundown_changed":
            self._refetch.set()
        elif kind == "volume" and isinstance(payload.get("volume"), int):
            self.volume = max(0, min(100, payload["volume"]))
            await self.channel.send(self._status())
        elif kind in ("alert", "cancel"):
            await self._obey(payload)
        await self.channel.send({"type": "ack", "seq": payload["seq"]})

    # --- alerts ---------------------------------------------------------------------------------

    async def _obey(self, payload: dict[str, Any]) -> None:
        """An alert plays at once (its audio fetched first); a cancel stops it for good."""
        try:
            if payload["type"] == "cancel":
                await self._cancel(payload)
                return
            alert = self.alert_book.take(payload, now=self.player.now())
        except (KeyError, TypeError, ValueError):
            self._stats.refusals[Refusal.malformed.value] += 1
            return
        if alert is None:
            self._stats.alerts_ignored += 1
            return
        await self._fetch_program(alert)
        self.player.alert(alert)

    async def _cancel(self, payload: dict[str, Any]) -> None:
        if not self.alert_book.cancel(payload):
            self._stats.alerts_ignored += 1
            return
        all_clear = AlertPlay.all_clear_of(payload)
        if all_clear is not None:
            await self._fetch_program(all_clear)
        self.player.cancel(int(payload["alert_id"]), all_clear)

    async def _fetch_program(self, alert: AlertPlay) -> None:
        """Alert audio is fetched now, with a few quick retries: it must play at once."""
        for attempt in range(3):
            try:
                await self._cache.ensure(
                    self._server.http, sha256=alert.sha256, url=alert.url, headers=self._auth
                )
                return
            except Exception:  # network, HTTP status or a sha256 mismatch: retry, then play fails
                self._stats.audio_failures += 1
                await asyncio.sleep(0.2 * (attempt + 1))

    async def _alerts_loop(self) -> None:
        """After every welcome: the alerts (and cancels) issued while this speaker was away."""
        backoff = Backoff(rng=self._rng)
        while True:
            await self._refetch_alerts.wait()
            self._refetch_alerts.clear()
            while not await self._fetch_alerts():
                await asyncio.sleep(backoff.next_delay())
            backoff.reset()

    async def _fetch_alerts(self) -> bool:
        try:
            response = await self._server.http.get("/device/v1/alerts", headers=self._auth)
        except httpx.HTTPError:
            self._stats.http_errors += 1
            return False
        if not self._answered(response):
            return False
        for envelope in response.json().get("envelopes", []):
            payload = await self._verify(envelope, stream="push")
            if payload is not None and payload["type"] in ("alert", "cancel"):
                self._stats.pushes_accepted += 1
                if self._on_push is not None:
                    self._on_push(self, payload)
                await self._obey(payload)
        return True

    async def _verify(self, envelope: Any, *, stream: str) -> dict[str, Any] | None:
        """The payload if genuine, fresh and unexpired (checked on the real clock), else None."""
        if not isinstance(envelope, dict):
            self._stats.refusals[Refusal.malformed.value] += 1
            return None
        if envelope.get("kid") not in self._keys.ring:
            with contextlib.suppress(httpx.HTTPError):
                await self._keys.refresh()
        try:
            payload = verify_envelope(
                envelope, self._keys.ring, now=datetime.now(UTC), window=self.windows[stream]
            )
        except Refused as exc:
            self._stats.refusals[exc.reason.value] += 1
            return None
        if payload["type"] != "rundown" and stream == "rundown":
            self._stats.refusals[Refusal.malformed.value] += 1
            return None
        self.windows[stream].accept(payload["seq"])
        return payload

    # --- rundown and audio --------------------------------------------------------------------

    async def _rundown_loop(self) -> None:
        backoff = Backoff(rng=self._rng)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._refetch.wait(), self._options.rundown_refresh_s)
            self._refetch.clear()
            await self._network_up.wait()
            while not await self._fetch_rundown():
                await asyncio.sleep(backoff.next_delay())
            backoff.reset()
            await self._fetch_audio()

    async def _fetch_rundown(self) -> bool:
        """True when the server answered (new, unchanged or refused content); False to retry."""
        headers = dict(self._auth)
        if self._etag is not None:
            headers["If-None-Match"] = self._etag
        try:
            response = await self._server.http.get("/device/v1/rundown", headers=headers)
        except httpx.HTTPError:
            self._stats.http_errors += 1
            return False
        if response.status_code == 304:
            self._stats.rundowns_not_modified += 1
            return True
        if not self._answered(response):
            return False
        payload = await self._verify(response.json(), stream="rundown")
        if payload is not None:
            self._etag = response.headers.get("ETag")
            self._stats.rundowns_accepted += 1
            if isinstance(payload.get("volume"), int):
                self.volume = payload["volume"]
            self.player.replace(payload)
        return True

    def _answered(self, response: httpx.Response) -> bool:
        if response.status_code in (401, 403):
            self._stats.auth_failures += 1
            raise Stopped(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code != 200:
            self._stats.http_errors += 1
            return False
        return True

    async def _fetch_audio(self) -> None:
        for program in self.player.programs():
            try:
                downloaded = await self._cache.ensure(
                    self._server.http, sha256=program["sha256"], url=program["url"], headers=self._auth
                )
            except Exception:  # network, HTTP status or a sha256 mismatch: retried on next fetch
                self._stats.audio_failures += 1
                continue
            if downloaded:
                self._stats.audio_downloaded += 1
            else:
                self._stats.audio_cache_hits += 1

    # --- events ---------------------------------------------------------------------------------

    async def _upload_loop(self) -> None:
        backoff = Backoff(rng=self._rng)
        while True:
            await asyncio.sleep(self._options.upload_interval_s)
            # Buffered while offline: uploads wait for a live connection.
            await self.channel.connected.wait()
            while batch := self.outbox.batch(real_now=datetime.now(UTC)):
                if not await self._upload(batch):
                    await asyncio.sleep(backoff.next_delay())
                    break
                backoff.reset()

    async def _upload(self, batch: list[dict[str, Any]]) -> bool:
        try:
            response = await self._server.http.post(
                "/device/v1/events", json={"events": batch}, headers=self._auth
            )
        except httpx.HTTPError:
            self._stats.http_errors += 1
            return False
        if not self._answered(response):
            return False
        settled = self.outbox.settle(batch, response.json())
        self._stats.events_accepted += settled.accepted
        self._stats.events_duplicates += settled.duplicates
        self._stats.events_rejected += settled.rejected
        return True

    # --- faults ---------------------------------------------------------------------------------

    async def _fault_loop(self) -> None:
        """Now and then the network goes away for 5-60 s: the connection breaks, nothing is sent."""
        while True:
            await asyncio.sleep(self._rng.uniform(30.0, 90.0))
            if self._rng.random() < self._options.faults:
                await self.outage(self._rng.uniform(5.0, 60.0))

    async def outage(self, seconds: float) -> None:
        """The network is gone for ``seconds``: the connection breaks; playing goes on."""
        self._stats.outages += 1
        self._network_up.clear()
        self.channel.drop()
        try:
            await asyncio.sleep(seconds)
        finally:
            self._network_up.set()
