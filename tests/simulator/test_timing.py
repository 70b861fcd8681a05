"""The virtual clock, the reconnect back-off and the event outbox."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from broadcast.simulator.outbox import MAX_BATCH, Outbox, make_event
from broadcast.simulator.timing import Backoff, VirtualClock

ORIGIN = datetime(2026, 6, 1, 5, 50, tzinfo=UTC)


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_virtual_clock_runs_speed_times_faster() -> None:
    mono = FakeMonotonic()
    clock = VirtualClock(speed=60, origin=ORIGIN, monotonic=mono)
    assert clock.now() == ORIGIN
    mono.t += 2.5
    assert clock.now() == ORIGIN + timedelta(minutes=2.5)
    assert clock.real_seconds_until(ORIGIN + timedelta(minutes=3.5)) == pytest.approx(1.0)
    assert clock.real_seconds_until(ORIGIN) == 0.0


def test_virtual_clock_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="speed"):
        VirtualClock(speed=0)
    with pytest.raises(ValueError, match="aware"):
        VirtualClock(origin=datetime(2026, 6, 1))  # noqa: DTZ001 - the point of the test


def test_virtual_clock_sleeps_in_virtual_time() -> None:
    clock = VirtualClock(speed=600)

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await clock.sleep(60)  # one virtual minute = 0.1 s
        await clock.sleep_until(clock.now() + timedelta(seconds=30))
        return loop.time() - began

    assert 0.14 <= asyncio.run(scenario()) < 0.5


def test_backoff_doubles_to_the_cap_within_jitter() -> None:
    backoff = Backoff(rng=random.Random(3))
    nominal = [1, 2, 4, 8, 16, 32, 60, 60, 60]
    for expected in nominal:
        delay = backoff.next_delay()
        assert expected * 0.8 <= delay <= expected * 1.2
    backoff.reset()
    assert 0.8 <= backoff.next_delay() <= 1.2


def test_backoff_jitter_spreads_a_storm() -> None:
    delays = [Backoff(rng=random.Random(seed)).next_delay() for seed in range(1000)]
    assert min(delays) >= 0.8
    assert max(delays) <= 1.2
    assert max(delays) - min(delays) > 0.35  # not all at once


def test_backoff_saturates_after_a_flood_close() -> None:
    backoff = Backoff(rng=random.Random(1))
    backoff.saturate()
    assert 48 <= backoff.next_delay() <= 72


def _event(minutes: int) -> tuple[dict[str, object], datetime]:
    at = ORIGIN + timedelta(minutes=minutes)
    return make_event("started", at=at, slot_id=1, program_sha256="a" * 64, position_ms=0), at


def test_outbox_retries_the_same_ids_until_answered() -> None:
    outbox = Outbox()
    for minute in range(3):
        event, at = _event(minute)
        outbox.add(event, at=at)
    first = outbox.batch(real_now=ORIGIN + timedelta(hours=1))
    again = outbox.batch(real_now=ORIGIN + timedelta(hours=1))
    assert [e["id"] for e in first] == [e["id"] for e in again]
    assert len({e["id"] for e in first}) == 3
    settled = outbox.settle(first, {"accepted": 2, "duplicates": 1, "rejected": []})
    assert (settled.accepted, settled.duplicates, len(outbox)) == (2, 1, 0)


def test_outbox_batches_at_most_500_and_holds_the_future() -> None:
    outbox = Outbox()
    for minute in [*([0] * (MAX_BATCH + 20)), 60]:
        event, at = _event(minute)
        outbox.add(event, at=at)
    batch = outbox.batch(real_now=ORIGIN)
    assert len(batch) == MAX_BATCH
    outbox.settle(batch, {"accepted": MAX_BATCH, "duplicates": 0, "rejected": []})
    assert len(outbox.batch(real_now=ORIGIN)) == 20  # the event an hour ahead waits
    assert len(outbox.batch(real_now=ORIGIN + timedelta(minutes=57))) == 21
