"""Fan-out of pushes between server processes: one interface, a Redis Stream or in-process.

A message is ``{"targets": [endpoint ids] | "all", "envelope": {...signed...}}``. Every gateway
worker reads every message and delivers it to the devices connected to it.

- :class:`RedisStreamBroker` (``settings.redis_url`` set): one capped Stream (``XADD ... MAXLEN ~``)
  read with plain ``XREAD BLOCK`` from the last id by *every* worker (a consumer group would
  split messages among workers). A worker that loses Redis reconnects with back-off and goes on
  from its last id, so it misses nothing the stream still holds; a restarted worker starts at
  the stream's end: anything that must survive a restart lives in the database.
  The blocking reader has its own client with ``socket_timeout=None`` (redis-py 8 defaults to
  5 s, which breaks ``XREAD BLOCK``); commands use a client with short timeouts.
- :class:`MemoryBroker` (embedded mode, one process): a queue per subscriber.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from broadcast.config import Settings

log = logging.getLogger(__name__)

Message = dict[str, Any]
STREAM = "broadcast:push"
STREAM_MAXLEN = 100_000
_FIELD = "m"
_START = "0-0"


class Broker(Protocol):
    async def start(self) -> None:
        """Connect, and fix the point from which ``subscribe()`` reads (messages after this call)."""
        ...

    async def publish(self, message: Message) -> None: ...

    def subscribe(self) -> AsyncIterator[Message]: ...

    async def close(self) -> None: ...


def encode(message: Message) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class MemoryBroker:
    """In-process fan-out for embedded mode: every subscriber gets every message."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Message]] = set()

    async def start(self) -> None:
        return None

    async def publish(self, message: Message) -> None:
        for queue in self._queues:
            queue.put_nowait(message)

    def subscribe(self) -> AsyncIterator[Message]:
        # Registered now, not at the first iteration, so nothing published after this is lost.
        queue: asyncio.Queue[Message] = asyncio.Queue()
        self._queues.add(queue)
        return self._drain(queue)

    async def _drain(self, queue: asyncio.Queue[Message]) -> AsyncIterator[Message]:
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)

    async def close(self) -> None:
        self._queues.clear()


def _id_key(entry_id: str) -> tuple[int, int]:
    millis, _, serial = entry_id.partition("-")
    return int(millis), int(serial or 0)


class RedisStreamBroker:
    def __init__(
        self,
        url: str,
        *,
        stream: str = STREAM,
        maxlen: int = STREAM_MAXLEN,
        block_ms: int = 5000,
        command_timeout_s: float = 2.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.stream = stream
        self.maxlen = maxlen
        self.block_ms = block_ms
        self.max_backoff_s = max_backoff_s
        connect = command_timeout_s
        self._commands = Redis.from_url(
            url, socket_timeout=command_timeout_s, socket_connect_timeout=connect, decode_responses=True
        )
        self._reader = Redis.from_url(
            url,
            socket_timeout=None,
            socket_connect_timeout=connect,
            socket_keepalive=True,
            health_check_interval=30,
            decode_responses=True,
        )
        self._position: str | None = None

    async def start(self) -> None:
        self._position = await self._tail()

    async def _tail(self) -> str:
        entries = await self._commands.xrevrange(self.stream, count=1)
        return str(entries[0][0]) if entries else _START

    async def publish(self, message: Message) -> None:
        await self._commands.xadd(
            self.stream, {_FIELD: encode(message)}, maxlen=self.maxlen, approximate=True
        )

    async def subscribe(self) -> AsyncIterator[Message]:
        position = self._position
        delay = 0.2
        while True:
            try:
                position = position or await self._tail()
                reply = await self._reader.xread({self.stream: position}, block=self.block_ms, count=1000)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("Redis stream %s unreadable (%s); retrying in %.1f s", self.stream, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                position = position and await self._resume_from(position)
                continue
            delay = 0.2
            for _stream, entries in cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], reply or []):
                for entry_id, fields in entries:
                    position = entry_id
                    message = _decode(entry_id, fields)
                    if message is not None:
                        yield message

    async def _resume_from(self, position: str) -> str:
        """Our last id, unless Redis came back with a younger stream (restarted without its data)."""
        try:
            tail = await self._tail()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return position
        return _START if _id_key(tail) < _id_key(position) else position

    async def close(self) -> None:
        await self._reader.aclose()
        await self._commands.aclose()


def _decode(entry_id: str, fields: dict[str, str]) -> Message | None:
    try:
        message = json.loads(fields[_FIELD])
    except (KeyError, ValueError):
        log.error("ignoring unreadable stream entry %s", entry_id)
        return None
    return message if isinstance(message, dict) else None


def make_broker(settings: Settings) -> Broker:
    if settings.redis_url:
        return RedisStreamBroker(settings.redis_url)
    return MemoryBroker()
