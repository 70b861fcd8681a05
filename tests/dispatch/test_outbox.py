"""The transactional outbox and its relay: nothing before the commit, nothing lost after it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from broadcast.clock import utc_now
from broadcast.db import transaction
from broadcast.dispatch.broker import MemoryBroker, Message
from broadcast.dispatch.models import OutboxMessage
from broadcast.dispatch.outbox import claim, enqueue, purge_published
from broadcast.dispatch.relay import OutboxRelay


def _rows(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


def test_a_rolled_back_transaction_leaves_nothing_and_wakes_nobody(engine: Engine) -> None:
    woken: list[int] = []

    def failing_change() -> None:
        with transaction(engine) as session:
            enqueue(session, {"n": 1}, wake=lambda: woken.append(1))
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert _rows(engine) == []
    assert woken == []
    with transaction(engine) as session:
        enqueue(session, {"n": 2}, wake=lambda: woken.append(2))
    assert woken == [2]
    assert [row.message for row in _rows(engine)] == [{"n": 2}]


def test_claim_takes_each_row_once_in_order_and_purge_forgets_old_published_ones(engine: Engine) -> None:
    with transaction(engine) as session:
        for n in range(5):
            enqueue(session, {"n": n})
    now = utc_now()
    with transaction(engine) as session:
        first = claim(session, now=now, limit=3)
    with transaction(engine) as session:
        second = claim(session, now=now, limit=3)
    with transaction(engine) as session:
        third = claim(session, now=now, limit=3)
    assert [m["n"] for _, m in first] == [0, 1, 2]
    assert [m["n"] for _, m in second] == [3, 4]
    assert third == []
    with transaction(engine) as session:
        assert purge_published(session, before=now) == 0
        assert purge_published(session, before=now + timedelta(seconds=1)) == 5
    assert _rows(engine) == []


class FlakyBroker(MemoryBroker):
    """Refuses the first ``failures`` publishes, then works."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.published: list[Message] = []

    async def publish(self, message: Message) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("Redis is down")
        self.published.append(message)
        await super().publish(message)


def test_the_relay_gives_back_what_the_broker_refused_and_publishes_it_later(engine: Engine) -> None:
    broker = FlakyBroker(failures=1)

    async def run_db(work: Any) -> Any:
        def in_transaction() -> Any:
            with transaction(engine) as session:
                return work(session)

        return await asyncio.to_thread(in_transaction)

    relay = OutboxRelay(broker=broker, run_db=run_db)
    with transaction(engine) as session:
        for n in range(3):
            enqueue(session, {"n": n})

    async def scenario() -> tuple[int, int]:
        refused = await relay.relay_once()
        published = await relay.relay_once()
        return refused, published

    assert asyncio.run(scenario()) == (0, 3)
    assert [m["n"] for m in broker.published] == [0, 1, 2]
    assert all(row.published_at is not None for row in _rows(engine))


def test_acks_of_alert_pushes_are_mapped_back_to_the_alert() -> None:
    relay = OutboxRelay(broker=MemoryBroker(), run_db=lambda work: work)
    message = {
        "targets": [1],
        "envelope": {"payload": {"seq": 41}},
        "alert": {"id": 9, "revision": 2, "type": "alert"},
    }
    relay.alert_seqs.note(message)
    relay.alert_seqs.note({"targets": [1], "envelope": {"payload": {"seq": 42}}})  # not an alert
    relay.note_ack(5, 41)
    relay.note_ack(5, 42)
    assert list(relay._acks) == [(9, 2, 5)]
