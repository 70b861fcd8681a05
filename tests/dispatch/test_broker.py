"""The broker: in-process and a real Redis Stream (a unique stream per test)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from broadcast.dispatch.broker import Broker, MemoryBroker, Message, RedisStreamBroker
from broadcast.dispatch.push import RedisPublisher

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def stream() -> Iterator[str]:
    name = f"test:push:{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(REDIS_URL).delete(name)


def _redis(stream: str) -> RedisStreamBroker:
    return RedisStreamBroker(REDIS_URL, stream=stream, block_ms=200)


async def _take(iterator: AsyncIterator[Message], n: int) -> list[Message]:
    return [await asyncio.wait_for(anext(iterator), 5) for _ in range(n)]


def _message(n: int) -> Message:
    return {"targets": [n], "envelope": {"payload": {"seq": n, "note": "村口广播"}}}


async def _every_subscriber_gets_everything(make: list[Broker]) -> None:
    for broker in make:
        await broker.start()
    first, second = (broker.subscribe() for broker in make)
    for n in range(3):
        await make[n % len(make)].publish(_message(n))
    assert await _take(first, 3) == [_message(n) for n in range(3)]
    assert await _take(second, 3) == [_message(n) for n in range(3)]
    for broker in make:
        await broker.close()


def test_memory_broker_fans_out_to_every_subscriber() -> None:
    broker = MemoryBroker()
    asyncio.run(_every_subscriber_gets_everything([broker, broker]))


def test_redis_broker_two_workers_both_read_everything(stream: str) -> None:
    """Plain XREAD by each worker (no consumer group): both see every message, in order."""
    asyncio.run(_every_subscriber_gets_everything([_redis(stream), _redis(stream)]))


def test_redis_broker_starts_at_the_end_and_caps_the_stream(stream: str) -> None:
    async def run() -> None:
        old = _redis(stream)
        for n in range(5):
            await old.publish(_message(n))
        worker = _redis(stream)
        await worker.start()  # a restarted worker: what came before is the database's business
        reader = worker.subscribe()
        await old.publish(_message(99))
        assert await _take(reader, 1) == [_message(99)]
        await old.close()
        await worker.close()

    asyncio.run(run())
    info = redis.Redis.from_url(REDIS_URL).xinfo_stream(stream)
    assert info["length"] == 6


def test_redis_broker_catches_up_after_losing_its_connection(stream: str) -> None:
    """A worker whose reader connection dies reconnects and goes on from its last id."""

    async def run() -> None:
        worker, publisher = _redis(stream), _redis(stream)
        await worker.start()
        reader = worker.subscribe()
        await publisher.publish(_message(1))
        assert await _take(reader, 1) == [_message(1)]
        admin = redis.Redis.from_url(REDIS_URL)
        pending = asyncio.ensure_future(_take(reader, 2))
        await asyncio.sleep(0.1)
        for client in admin.client_list():
            if client["cmd"] == "xread":
                admin.client_kill_filter(_id=client["id"])
        await publisher.publish(_message(2))
        await publisher.publish(_message(3))
        assert await pending == [_message(2), _message(3)]
        await worker.close()
        await publisher.close()

    asyncio.run(run())


def test_sync_publisher_reaches_async_readers(stream: str) -> None:
    """The scheduler (no gateway) publishes with a plain client into the same stream."""

    async def run() -> None:
        worker = _redis(stream)
        await worker.start()
        reader = worker.subscribe()
        await asyncio.to_thread(RedisPublisher(REDIS_URL, stream=stream).send, _message(7))
        assert await _take(reader, 1) == [_message(7)]
        await worker.close()

    asyncio.run(run())


def test_unreadable_entries_are_skipped(stream: str) -> None:
    async def run() -> None:
        worker = _redis(stream)
        await worker.start()
        reader = worker.subscribe()
        raw = redis.Redis.from_url(REDIS_URL)
        raw.xadd(stream, {"m": "not json"})
        raw.xadd(stream, {"other": "field"})
        await worker.publish(_message(5))
        assert await _take(reader, 1) == [_message(5)]
        await worker.close()

    asyncio.run(run())
