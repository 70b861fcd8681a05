"""The scheduler's leader lock: exactly one ``broadcast scheduler`` (or embedded scheduler) runs jobs.

A lock is a *lease*: the holder renews it well within ``ttl``; a stand-by takes it only once it
has expired, so a crashed leader is replaced within one ``ttl``, and a leader that cannot renew
(lost it, or cannot reach the store) must stop its jobs at once (see
:mod:`broadcast.scheduling.scheduler`).

- :class:`RedisLease` (``settings.redis_url`` set): ``SET name holder NX PX ttl`` to take it, a Lua
  compare-and-renew (``PEXPIRE`` only while the value is still ours) to keep it, a Lua
  compare-and-delete to release it. Redis's own key expiry decides, so clocks do not matter. The
  client sets its socket timeouts explicitly (redis-py 8 changed the default; a call must never
  block longer than a fraction of ``ttl``).
- :class:`DatabaseLease` (no Redis): one row of the ``leases`` table, taken or renewed by a single
  atomic ``UPDATE ... WHERE name = ? AND (holder = ? OR expires_at < now)``; the row is INSERTed on
  first use (a concurrent INSERT loses on the primary key). Each attempt is its own short
  transaction. Expiry compares the contenders' clocks, so hosts need NTP; ``ttl`` (30 s by
  default) dwarfs ordinary clock skew.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Protocol

import redis
from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import IntegrityError, OperationalError

from broadcast.clock import Clock, SystemClock
from broadcast.scheduling.models import Lease

log = logging.getLogger(__name__)

LEADER_LEASE = "scheduler.leader"
DEFAULT_TTL_S = 30.0
REDIS_TIMEOUT_S = 5.0

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def holder_id() -> str:
    """Who holds a lease: host, process and a random part (two schedulers on one host differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLock(Protocol):
    name: str
    holder: str
    ttl_s: float

    def acquire(self) -> bool:
        """Take the lease or renew ours; True while we hold it. Never raises for store outages."""
        ...

    def release(self) -> None:
        """Give the lease up (if it is still ours) so a stand-by can take over at once."""
        ...


class DatabaseLease:
    """A lease row in the ``leases`` table (see the module doc)."""

    def __init__(
        self,
        engine: Engine,
        *,
        name: str = LEADER_LEASE,
        holder: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder or holder_id()
        self.ttl_s = ttl_s
        self.clock = clock or SystemClock()

    def acquire(self) -> bool:
        now = self.clock.now()
        try:
            return self._update(now) or self._insert(now)
        except OperationalError:
            log.warning("lease %s: database unreachable, not leader", self.name, exc_info=True)
            return False

    def release(self) -> None:
        table = Lease.__table__  # type: ignore[attr-defined]
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    delete(table).where(table.c.name == self.name, table.c.holder == self.holder)
                )
        except OperationalError:
            log.warning("lease %s: could not release; it expires on its own", self.name, exc_info=True)

    def _expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.ttl_s)

    def _update(self, now: datetime) -> bool:
        table = Lease.__table__  # type: ignore[attr-defined]
        stmt = (
            update(table)
            .where(table.c.name == self.name, (table.c.holder == self.holder) | (table.c.expires_at < now))
            .values(holder=self.holder, expires_at=self._expiry(now))
        )
        with self.engine.begin() as connection:
            return connection.execute(stmt).rowcount == 1

    def _insert(self, now: datetime) -> bool:
        table = Lease.__table__  # type: ignore[attr-defined]
        stmt = insert(table).values(name=self.name, holder=self.holder, expires_at=self._expiry(now))
        try:
            with self.engine.begin() as connection:
                connection.execute(stmt)
        except IntegrityError:
            return False
        return True


class RedisLease:
    """A lease as one Redis key with a PX expiry (see the module doc)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        name: str = LEADER_LEASE,
        holder: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
    ) -> None:
        self.client = client
        self.name = name
        self.holder = holder or holder_id()
        self.ttl_s = ttl_s
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, *, name: str = LEADER_LEASE, ttl_s: float = DEFAULT_TTL_S) -> RedisLease:
        client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            decode_responses=True,
        )
        return cls(client, name=name, ttl_s=ttl_s)

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl_s * 1000))

    def acquire(self) -> bool:
        try:
            if self._renew(keys=[self.name], args=[self.holder, self._ttl_ms]):
                return True
            return bool(self.client.set(self.name, self.holder, nx=True, px=self._ttl_ms))
        except redis.RedisError:
            log.warning("lease %s: Redis unreachable, not leader", self.name, exc_info=True)
            return False

    def release(self) -> None:
        try:
            self._release(keys=[self.name], args=[self.holder])
        except redis.RedisError:
            log.warning("lease %s: could not release; it expires on its own", self.name, exc_info=True)


def leader_lock(engine: Engine, *, redis_url: str | None, ttl_s: float = DEFAULT_TTL_S) -> LeaderLock:
    """Redis when configured, else the database."""
    if redis_url:
        return RedisLease.from_url(redis_url, ttl_s=ttl_s)
    return DatabaseLease(engine, ttl_s=ttl_s)
