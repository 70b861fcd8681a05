"""The device gateway's per-process state and background tasks, started and stopped with the server.

One :class:`DispatchRuntime` per server process holds the broker, the connection registry and
the presence batches, and runs six tasks: the broker reader (fan-out to local connections),
the pinger, the sweeper (silent connections, stale rows), the presence flusher, and the two
batchers of a connect storm: admission (token check, online marks and the push counter for up
to ``ADMISSION_BATCH`` handshakes per transaction) and departures (offline marks). Database
work always runs in a worker thread; the event loop only moves frames.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Generic, TypeVar

import anyio
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import Session

from broadcast.alerts.delivery import alerts_to_know
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.db import transaction
from broadcast.dispatch import presence
from broadcast.dispatch.broker import Broker, Message, make_broker
from broadcast.dispatch.connections import CloseCode, Connection, FloodLimiter, Registry
from broadcast.dispatch.device_auth import TokenOwner, TokenRefusal, check_ws_tokens
from broadcast.dispatch.envelope import format_time
from broadcast.dispatch.models import Counter
from broadcast.dispatch.presence import Departure, Reason
from broadcast.dispatch.relay import OutboxRelay
from broadcast.dispatch.sequence import PUSH

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")
R = TypeVar("R")
STOP_GRACE_S = 2.0
# Handshakes checked in one transaction, and how many may wait for one before the gateway
# answers 1013 (try again later) at once: a storm beyond what the database absorbs in a few
# batches is turned away cheaply instead of piling up into timeouts.
ADMISSION_BATCH = 500
MAX_ADMISSIONS = 2000
DEPARTURE_BATCH = 1000
_running: list[DispatchRuntime] = []


def frame(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class TryLater(Exception):
    """The gateway cannot take this handshake now (queue full, database failing): close 1013."""


class Stopping(Exception):
    """The gateway is stopping: the handshake is closed with 1001."""


class Batcher(Generic[K, R]):
    """Items from many coroutines, handled up to ``size`` at a time by one task (one transaction).

    While a batch is in the database the next one fills, so the batch size follows the load.
    ``limit`` bounds the items waiting or in work: beyond it ``submit`` raises ``TryLater``.
    """

    def __init__(
        self, work: Callable[[list[K]], Awaitable[list[R]]], *, size: int, limit: int | None = None
    ) -> None:
        self._work = work
        self.size = size
        self.limit = limit
        self._waiting: list[tuple[K, asyncio.Future[R]]] = []
        self._in_work = 0
        self._ready = asyncio.Event()
        self._closing = False
        self._runner: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._waiting) + self._in_work

    def submit(self, item: K) -> asyncio.Future[R]:
        if self.limit is not None and len(self) >= self.limit:
            raise TryLater(f"{len(self)} waiting")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._ready.set()
        return future

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            if self._closing:
                return
            await self.one_batch()

    async def close(self) -> None:
        """Let the batch in the database finish (never cancel it), then handle all that waits."""
        self._closing = True
        self._ready.set()
        if self._runner is not None:
            await self._runner
        while self._waiting:
            await self.one_batch()

    def fail_waiting(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, []
        self._ready.clear()
        for _, future in waiting:
            if not future.done():
                future.set_exception(error)

    async def one_batch(self) -> None:
        batch, self._waiting = self._waiting[: self.size], self._waiting[self.size :]
        if not self._waiting:
            self._ready.clear()
        if not batch:
            return
        self._in_work = len(batch)
        try:
            results = await self._work([item for item, _ in batch])
        except Exception as exc:
            log.exception("a gateway batch of %d failed", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(TryLater(str(exc)))
            return
        finally:
            self._in_work = 0
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


@dataclass(frozen=True)
class Handshake:
    token_hash: str
    address: str | None
    at: datetime


@dataclass(frozen=True)
class Identity:
    endpoint_id: int
    code: str
    last_seq: int
    alerts: int  # alerts and cancels the device must know about now (the welcome says so)


def admit(session: Session, handshakes: Sequence[Handshake]) -> list[Identity | TokenRefusal]:
    """One batch of handshakes: check the tokens, mark the admitted online, read the push counter
    and how many alerts each admitted device must fetch."""
    now = utc_now()
    verdicts = check_ws_tokens(session, {h.token_hash for h in handshakes}, now=now)
    arrivals = []
    for handshake in handshakes:
        verdict = verdicts[handshake.token_hash]
        if isinstance(verdict, TokenOwner):
            arrivals.append(presence.Arrival(verdict.endpoint_id, handshake.address, handshake.at))
    presence.mark_online_many(session, arrivals)
    counter = session.get(Counter, PUSH)
    last_seq = counter.value if counter else 0
    alerts = alerts_to_know(session, (a.endpoint_id for a in arrivals), now=now)
    outcomes: list[Identity | TokenRefusal] = []
    for handshake in handshakes:
        verdict = verdicts[handshake.token_hash]
        if isinstance(verdict, TokenOwner):
            outcomes.append(
                Identity(verdict.endpoint_id, verdict.code, last_seq, alerts.get(verdict.endpoint_id, 0))
            )
        else:
            outcomes.append(verdict)
    return outcomes


class DispatchRuntime:
    def __init__(self, *, engine: Engine, settings: Settings, broker: Broker) -> None:
        self.engine = engine
        self.settings = settings
        self.broker = broker
        self.registry = Registry()
        self.flood: FloodLimiter[str] = FloodLimiter()
        self.admission: Batcher[Handshake, Identity | TokenRefusal] = Batcher(
            self._admit_batch, size=ADMISSION_BATCH, limit=MAX_ADMISSIONS
        )
        self.departures: Batcher[Departure, set[int]] = Batcher(self._depart_batch, size=DEPARTURE_BATCH)
        offline_after = settings.device_offline_after_s
        self.sweep_interval_s = max(0.2, min(5.0, offline_after / 4))
        self.flush_interval_s = self.sweep_interval_s
        self._seen: dict[int, datetime] = {}
        self._firmware: dict[int, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.relay = OutboxRelay(broker=broker, run_db=self.run_db)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await self.broker.start()
        except Exception:  # Redis down at start: the reader keeps retrying on its own.
            log.exception("broker unavailable at start; the gateway keeps retrying")
        subscription = self.broker.subscribe()
        self._tasks = [
            asyncio.create_task(self._fan_out(subscription), name="dispatch-fan-out"),
            asyncio.create_task(self._every(self.settings.device_ping_interval_s, self._ping_all)),
            asyncio.create_task(self._every(self.sweep_interval_s, self._sweep)),
            asyncio.create_task(self._every(self.flush_interval_s, self._flush)),
            asyncio.create_task(self.relay.run(), name="dispatch-outbox-relay"),
        ]
        self.admission.start()
        self.departures.start()
        _running.append(self)

    async def stop(self) -> None:
        """Close every connection (1001), then write all their offline marks in a few batches."""
        if self in _running:
            _running.remove(self)
        self.admission.fail_waiting(Stopping())
        for connection in self.registry.connections():
            connection.close(CloseCode.going_away, Reason.shutdown)
        deadline = asyncio.get_running_loop().time() + STOP_GRACE_S
        while len(self.registry) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.admission.fail_waiting(Stopping())
        await self.admission.close()
        await self.departures.close()
        await self._flush()
        await self.broker.close()

    # Database work, always in a worker thread, one transaction per call.

    async def run_db(self, work: Callable[[Session], T]) -> T:
        return await anyio.to_thread.run_sync(partial(self._in_transaction, work))

    def _in_transaction(self, work: Callable[[Session], T]) -> T:
        with transaction(self.engine) as session:
            return work(session)

    # Connections.

    def note_frame(self, connection: Connection) -> None:
        self._seen[connection.endpoint_id] = connection.last_frame_at

    def note_firmware(self, endpoint_id: int, firmware: str) -> None:
        self._firmware[endpoint_id] = firmware

    async def admit(self, handshake: Handshake) -> Identity | TokenRefusal:
        """Wait for this handshake's batch: its endpoint (already marked online) or its refusal.

        Raises ``TryLater`` when too many handshakes wait already, ``Stopping`` during a stop.
        """
        return await self.admission.submit(handshake)

    async def _admit_batch(self, handshakes: list[Handshake]) -> list[Identity | TokenRefusal]:
        return await self.run_db(partial(admit, handshakes=handshakes))

    def detach(self, connection: Connection) -> None:
        """Queue its offline mark (written with others in one transaction)."""
        if not self.registry.unregister(connection):
            return  # replaced by a newer connection: the endpoint is still online
        self._seen.pop(connection.endpoint_id, None)
        reason = Reason(connection.close_reason) if connection.close_reason else Reason.closed
        self.departures.submit(Departure(connection.endpoint_id, connection.last_frame_at, reason))

    async def _depart_batch(self, departures: list[Departure]) -> list[set[int]]:
        gone = await self.run_db(partial(presence.mark_offline_many, departures=departures))
        return [gone] * len(departures)

    # Publishing, from any thread.

    def send(self, message: Message) -> None:
        """Publish from any thread (e.g. after a request's commit); failures are logged."""
        if self._loop is None or self._loop.is_closed():
            log.error("dispatch runtime is not running; push to %s dropped", message.get("targets"))
            return
        future = asyncio.run_coroutine_threadsafe(self.broker.publish(message), self._loop)
        future.add_done_callback(_log_failure)

    # Background tasks.

    def deliver(self, message: Message) -> int:
        targets, envelope = message.get("targets"), message.get("envelope")
        if not isinstance(envelope, dict) or not (targets == "all" or isinstance(targets, list)):
            log.error("ignoring a broker message without targets and envelope")
            return 0
        self.relay.alert_seqs.note(message)
        return self.registry.deliver(targets, frame({"type": "push", "envelope": envelope}))

    def wake_outbox(self) -> None:
        """A commit in this process put messages in the outbox: relay them now (any thread)."""
        self.relay.wake()

    def note_ack(self, connection: Connection, seq: int) -> None:
        self.relay.note_ack(connection.endpoint_id, seq)

    async def _fan_out(self, subscription: Any) -> None:
        while True:
            try:
                async for message in subscription:
                    self.deliver(message)
                    await asyncio.sleep(0)  # let the writers drain between messages of a burst
            except Exception:
                log.exception("broker subscription failed; resubscribing")
                await asyncio.sleep(1.0)
            subscription = self.broker.subscribe()

    async def _every(self, interval_s: float, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await work()
            except Exception:
                log.exception("gateway task %s failed; retrying next interval", work.__name__)

    async def _ping_all(self) -> None:
        ping = frame({"type": "ping", "t": format_time(utc_now())})
        for connection in self.registry.connections():
            connection.offer(ping)

    async def _sweep(self) -> None:
        silent_after = self.settings.device_offline_after_s
        now = asyncio.get_running_loop().time()
        for connection in self.registry.connections():
            if now - connection.last_frame_mono > silent_after:
                connection.close(CloseCode.stuck, Reason.timeout)
        self.flood.forget_idle()
        cutoff = utc_now() - timedelta(seconds=silent_after)
        gone = await self.run_db(partial(presence.sweep_stale, cutoff=cutoff))
        if gone:
            log.info("%d endpoints silent since %s marked offline", len(gone), cutoff.isoformat())

    async def _flush(self) -> None:
        seen, self._seen = self._seen, {}
        firmware, self._firmware = self._firmware, {}
        if seen or firmware:
            await self.run_db(partial(presence.record_seen, seen=seen, firmware=firmware))
        await self.relay.flush_acks()


def _log_failure(future: Future[None]) -> None:
    if not future.cancelled() and (error := future.exception()) is not None:
        log.error("publishing a push failed: %s", error)


def running_runtime() -> DispatchRuntime | None:
    """This process's gateway runtime (the server's), if one is running."""
    return _running[-1] if _running else None


def runtime_of(app: FastAPI) -> DispatchRuntime:
    runtime: DispatchRuntime = app.state.dispatch
    return runtime


async def start_dispatch(app: FastAPI) -> None:
    """Start the broker reader, pinger, sweeper and presence flusher for this server process."""
    runtime = DispatchRuntime(
        engine=app.state.engine, settings=app.state.settings, broker=make_broker(app.state.settings)
    )
    app.state.dispatch = runtime
    await runtime.start()


async def stop_dispatch(app: FastAPI) -> None:
    """Stop them, closing device connections cleanly."""
    await runtime_of(app).stop()
