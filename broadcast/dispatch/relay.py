"""The outbox relay of one server process, and the alert acknowledgements its gateway collects.

The relay wakes when a commit in this process enqueued something (``wake``, thread-safe) or
every ``POLL_S`` for rows other processes left (the scheduler, a crashed server), claims them in a
worker thread, publishes them in order and gives back what the broker refused.

Acknowledgements: a device answers every push it accepted with ``{"type": "ack", "seq": n}``.
The relay remembers which push seq carried which (alert, revision), so the gateway can turn an
ack into "delivered" on the alert's board; acks are written in batches, like presence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlmodel import Session

from broadcast.alerts.delivery import record_acks
from broadcast.clock import utc_now
from broadcast.dispatch import outbox
from broadcast.dispatch.broker import Broker, Message

log = logging.getLogger(__name__)

T = TypeVar("T")
RunDb = Callable[[Callable[[Session], T]], Awaitable[T]]
POLL_S = 1.0
REMEMBERED_SEQS = 10_000


class AlertSeqs:
    """push seq → (alert id, revision), for the last ``REMEMBERED_SEQS`` alert pushes seen here."""

    def __init__(self) -> None:
        self._by_seq: OrderedDict[int, tuple[int, int]] = OrderedDict()

    def note(self, message: Message) -> None:
        meta, envelope = message.get("alert"), message.get("envelope")
        if not isinstance(meta, dict) or meta.get("type") != "alert" or not isinstance(envelope, dict):
            return
        seq = envelope.get("payload", {}).get("seq")
        alert_id, revision = meta.get("id"), meta.get("revision")
        if isinstance(seq, int) and isinstance(alert_id, int) and isinstance(revision, int):
            self._by_seq[seq] = (alert_id, revision)
            while len(self._by_seq) > REMEMBERED_SEQS:
                self._by_seq.popitem(last=False)

    def get(self, seq: int) -> tuple[int, int] | None:
        return self._by_seq.get(seq)


class OutboxRelay:
    def __init__(self, *, broker: Broker, run_db: RunDb[Any]) -> None:
        self._broker = broker
        self._run_db = run_db
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self.alert_seqs = AlertSeqs()
        self._acks: dict[tuple[int, int, int], datetime] = {}

    def wake(self) -> None:
        """Called from any thread after a commit that enqueued messages."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def note_ack(self, endpoint_id: int, seq: int) -> None:
        found = self.alert_seqs.get(seq)
        if found is not None:
            self._acks.setdefault((found[0], found[1], endpoint_id), utc_now())

    async def flush_acks(self) -> None:
        acks, self._acks = self._acks, {}
        if acks:
            await self._run_db(partial(record_acks, acks=acks))

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            self._wake.clear()
            try:
                while await self.relay_once():
                    pass
            except Exception:
                log.exception("outbox relay failed; retrying in %.0f s", POLL_S)

    async def relay_once(self) -> int:
        """Publish one claimed batch; how many were published."""
        claimed: list[tuple[int, dict[str, Any]]] = await self._run_db(partial(outbox.claim, now=utc_now()))
        for index, (row_id, message) in enumerate(claimed):
            try:
                await self._broker.publish(message)
            except Exception:
                rest = [i for i, _ in claimed[index:]]
                log.exception("broker refused outbox message %s; %d given back", row_id, len(rest))
                await self._run_db(partial(outbox.release, ids=rest))
                return index
        return len(claimed)
