"""Pushes to devices: sign once, publish to every gateway after the transaction commits.

The sequence number is taken inside the caller's transaction (``signing.sign``), so the push
may only leave once that transaction has committed: a rolled-back push gives its number back
and must never have reached a device. Publication happens from any thread through a
:class:`Publisher`: the server's gateway runtime, or (a process without a gateway, such as the
scheduler) a plain Redis client that appends to the same stream.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Literal, Protocol

import redis
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session

from broadcast.config import Settings
from broadcast.dispatch.broker import STREAM, STREAM_MAXLEN, Message, encode
from broadcast.dispatch.runtime import running_runtime, runtime_of
from broadcast.dispatch.signing import sign

log = logging.getLogger(__name__)

Targets = Sequence[int] | Literal["all"]
_OUTBOX = "dispatch_outbox"


class Publisher(Protocol):
    def send(self, message: Message) -> None:
        """Publish now, from any thread; never raises (failures are logged)."""
        ...


class RedisPublisher:
    """For processes without a gateway: appends to the stream every gateway reads."""

    def __init__(self, url: str, *, stream: str = STREAM, timeout_s: float = 2.0) -> None:
        self.stream = stream
        self._client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    def send(self, message: Message) -> None:
        try:
            self._client.xadd(self.stream, {"m": encode(message)}, maxlen=STREAM_MAXLEN, approximate=True)
        except redis.RedisError as exc:
            log.error("publishing a push to Redis failed: %s", exc)


def publisher_for(target: FastAPI | Publisher | None, *, settings: Settings) -> Publisher | None:
    """The app's gateway, an explicit publisher, or this process's gateway, else Redis."""
    if isinstance(target, FastAPI):
        return runtime_of(target)
    if target is not None:
        return target
    runtime = running_runtime()
    if runtime is not None:
        return runtime
    return _redis_publisher(settings.redis_url) if settings.redis_url else None


@lru_cache(maxsize=4)
def _redis_publisher(url: str) -> RedisPublisher:
    return RedisPublisher(url)


def _send_outbox(session: Session) -> None:
    for publisher, message in session.info.pop(_OUTBOX, []):
        publisher.send(message)


def _drop_outbox(session: Session, previous: SessionTransaction) -> None:
    if not previous.nested:
        session.info.pop(_OUTBOX, None)


def _after_commit(session: Session, publisher: Publisher, message: Message) -> None:
    outbox = session.info.setdefault(_OUTBOX, [])
    if not event.contains(session, "after_commit", _send_outbox):
        event.listen(session, "after_commit", _send_outbox)
        event.listen(session, "after_soft_rollback", _drop_outbox)
    outbox.append((publisher, message))


def publish_push(
    target: FastAPI | Publisher | None,
    session: Session,
    *,
    targets: Targets,
    payload_type: str,
    body: dict[str, Any],
    settings: Settings,
) -> dict[str, Any]:
    """Sign ``{"type": payload_type, **body}`` and publish it to ``targets`` once the session commits.

    Returns the envelope. With no gateway to reach (embedded CLI run without Redis) the push is
    signed but goes nowhere; devices still re-fetch their rundown at least every 15 minutes.
    """
    envelope = sign(session, {**body, "type": payload_type}, settings=settings)
    publisher = publisher_for(target, settings=settings)
    if publisher is None:
        log.info("no gateway reachable from this process; %s push not delivered", payload_type)
        return envelope
    targets_out: list[int] | str = "all" if targets == "all" else sorted(set(targets))
    _after_commit(session, publisher, {"targets": targets_out, "envelope": envelope})
    return envelope


def notify_rundown_changed(
    session: Session,
    *,
    endpoint_ids: Iterable[int],
    settings: Settings,
    target: FastAPI | Publisher | None = None,
) -> dict[str, Any] | None:
    """Tell these endpoints to re-fetch their rundown (one signed push for all of them)."""
    ids = sorted(set(endpoint_ids))
    if not ids:
        return None
    return publish_push(
        target, session, targets=ids, payload_type="rundown_changed", body={}, settings=settings
    )
