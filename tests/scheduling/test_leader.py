"""Leader election: exactly one of two contenders leads; a stand-by takes over once the lease expires."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import Engine

from broadcast.clock import FixedClock
from broadcast.scheduling.leader import DatabaseLease, RedisLease

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def redis_name() -> Iterator[str]:
    name = f"test:broadcast:leader:{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(REDIS_URL, socket_timeout=5).delete(name)


def test_database_lease_one_leader_then_takeover_after_expiry(engine: Engine) -> None:
    clock = FixedClock(T0)
    first = DatabaseLease(engine, name="test.leader", holder="a", ttl_s=30, clock=clock)
    second = DatabaseLease(engine, name="test.leader", holder="b", ttl_s=30, clock=clock)
    assert first.acquire() is True
    assert second.acquire() is False
    clock.set(T0 + timedelta(seconds=20))
    assert first.acquire() is True  # renewed until T0 + 50 s
    clock.set(T0 + timedelta(seconds=45))
    assert second.acquire() is False
    clock.set(T0 + timedelta(seconds=51))
    assert second.acquire() is True
    assert first.acquire() is False  # the old leader learns it lost the lease
    second.release()
    assert first.acquire() is True  # released: taken at once, no need to wait for expiry


def test_database_lease_release_by_a_stand_by_changes_nothing(engine: Engine) -> None:
    clock = FixedClock(T0)
    leader = DatabaseLease(engine, name="test.leader", holder="a", clock=clock)
    stand_by = DatabaseLease(engine, name="test.leader", holder="b", clock=clock)
    assert leader.acquire()
    stand_by.release()
    assert stand_by.acquire() is False
    assert leader.acquire() is True


def test_redis_lease_one_leader_then_takeover_after_expiry(redis_name: str) -> None:
    first = RedisLease.from_url(REDIS_URL, name=redis_name, ttl_s=0.3)
    second = RedisLease.from_url(REDIS_URL, name=redis_name, ttl_s=0.3)
    assert first.acquire() is True
    assert second.acquire() is False
    assert first.acquire() is True  # renewal keeps it
    time.sleep(0.4)
    assert second.acquire() is True
    assert first.acquire() is False
    first.release()  # not ours any more: must not delete the new leader's key
    assert second.acquire() is True
    second.release()
    assert first.acquire() is True
    first.release()


def test_redis_unreachable_means_not_leader() -> None:
    lease = RedisLease.from_url("redis://127.0.0.1:1/0", name="test:unreachable", ttl_s=1)
    assert lease.acquire() is False
    lease.release()
