"""The virtual clock, the reconnect back-off and the event outbox."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from broadcast.simulator.channel import Channel, ChannelClosed
from broadcast.simulator.outbox import MAX_BATCH, Outbox, make_event
from broadcast.simulator.stats import FleetStats
from broadcast.simulator.timing import (
    BUSY_DELAY_S,
    RESTART_ATTEMPTS,
    RESTART_SPREAD_S,
    Backoff,
    VirtualClock,
)

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


def test_after_a_server_restart_quick_attempts_spread_over_ten_seconds_then_the_schedule() -> None:
    backoff = Backoff(rng=random.Random(5))
    backoff.server_went_away()
    quick = [backoff.next_delay() for _ in range(RESTART_ATTEMPTS)]
    assert all(0 <= delay <= RESTART_SPREAD_S for delay in quick)
    assert backoff.attempt == 0  # the quick attempts did not grow the back-off
    assert 0.8 <= backoff.next_delay() <= 1.2
    assert 1.6 <= backoff.next_delay() <= 2.4


def test_restart_delays_spread_a_city_uniformly() -> None:
    delays = []
    for seed in range(9305):
        backoff = Backoff(rng=random.Random(seed))
        backoff.server_went_away()
        delays.append(backoff.next_delay())
    per_second = [sum(1 for d in delays if s <= d < s + 1) for s in range(10)]
    assert min(per_second) > 800
    assert max(per_second) < 1100


def test_a_welcome_ends_the_quick_attempts_and_a_flood_close_overrides_them() -> None:
    backoff = Backoff(rng=random.Random(2))
    backoff.server_went_away()
    backoff.next_delay()
    backoff.connected()
    assert 0.8 <= backoff.next_delay() <= 1.2
    backoff.server_went_away()
    backoff.saturate()
    assert 48 <= backoff.next_delay() <= 72


def test_busy_delay_leaves_the_schedule_alone() -> None:
    backoff = Backoff(rng=random.Random(4))
    backoff.next_delay()
    delays = [backoff.busy_delay() for _ in range(200)]
    assert all(BUSY_DELAY_S[0] <= d <= BUSY_DELAY_S[1] for d in delays)
    assert max(delays) - min(delays) > 5
    assert backoff.attempt == 1


async def _ignore(_frame: dict[str, object]) -> None:
    return None


def _channel(backoff: Backoff) -> Channel:
    return Channel(
        url="ws://127.0.0.1:1/device/v1/ws",
        token="bcd_x",
        stats=FleetStats(),
        backoff=backoff,
        network_up=asyncio.Event(),
        on_frame=_ignore,
        on_welcome=_ignore,
    )


@pytest.mark.parametrize("code", [1001, 1012, None])
def test_channel_reconnects_quickly_when_the_server_went_away(code: int | None) -> None:
    backoff = Backoff(rng=random.Random(6), attempt=4)  # deep in the schedule: 16 s next
    channel = _channel(backoff)
    delays = [channel._delay_after(code, True, 5.0)]
    delays += [channel._delay_after(None, False, 0.1) for _ in range(RESTART_ATTEMPTS - 1)]
    assert all(d <= RESTART_SPREAD_S for d in delays)
    assert 12.8 <= channel._delay_after(None, False, 0.1) <= 19.2  # then the schedule, where it was


def test_channel_obeys_1013_and_stops_on_a_refused_token() -> None:
    backoff = Backoff(rng=random.Random(7), attempt=6)
    channel = _channel(backoff)
    assert BUSY_DELAY_S[0] <= channel._delay_after(1013, False, 0.0) <= BUSY_DELAY_S[1]
    assert backoff.attempt == 6
    assert 48 <= channel._delay_after(1000, True, 1.0) <= 72  # a normal close keeps the back-off
    with pytest.raises(ChannelClosed):
        channel._delay_after(4403, False, 0.0)


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
