"""The speaker's alert rules (docs/device-protocol.md §6.5), on an accelerated clock.

One virtual second is a hundredth of a real one, so a 20-second alert plays in 0.2 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broadcast.dispatch.envelope import format_time
from broadcast.simulator.alerts import AlertBook, AlertPlay
from broadcast.simulator.audio import AudioCache
from broadcast.simulator.outbox import Outbox
from broadcast.simulator.player import Player
from broadcast.simulator.stats import FleetStats
from broadcast.simulator.timing import VirtualClock

SPEED = 100.0
SHA = {name: name * 64 for name in "abcdef"}


def _program(key: str, duration_ms: int) -> dict[str, Any]:
    return {
        "sha256": SHA[key],
        "size_bytes": 1,
        "duration_ms": duration_ms,
        "url": f"/device/v1/audio/{SHA[key]}",
    }


def alert_payload(
    clock: VirtualClock, alert_id: int, *, level: int, key: str, revision: int = 1, seconds: int = 20
) -> dict[str, Any]:
    return {
        "type": "alert",
        "alert_id": alert_id,
        "revision": revision,
        "level": level,
        "category": "flood",
        "drill": False,
        "title": "预警",
        "repeat": 1,
        "valid_until": format_time(clock.now() + timedelta(hours=1)),
        "program": _program(key, seconds * 1000),
    }


class Speaker:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = VirtualClock(speed=SPEED)
        cache = AudioCache(tmp_path)
        for sha in SHA.values():
            cache.path(sha).write_bytes(b"x")
        self.outbox = Outbox()
        self.stats = FleetStats()
        self.player = Player(clock=self.clock, cache=cache, outbox=self.outbox, stats=self.stats)
        self.book = AlertBook()

    def give(self, payload: dict[str, Any]) -> bool:
        taken = self.book.take(payload, now=self.clock.now())
        if taken is not None:
            self.player.alert(taken)
        return taken is not None

    def cancel(self, alert_id: int, *, all_clear: str | None) -> None:
        payload = {
            "type": "cancel",
            "alert_id": alert_id,
            "revision": 1,
            "drill": False,
            "valid_until": format_time(self.clock.now() + timedelta(hours=1)),
            "all_clear": _program(all_clear, 5000) if all_clear else None,
        }
        self.book.cancel(payload)
        self.player.cancel(alert_id, AlertPlay.all_clear_of(payload))

    def events(self) -> list[tuple[str, Any, Any, Any]]:
        batch = self.outbox.batch(real_now=self.clock.now() + timedelta(days=3650))
        return [(e["type"], e.get("alert_id"), e.get("slot_id"), e["reason"]) for e in batch]

    async def until(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check():
            assert loop.time() < deadline, f"timed out; events so far: {self.events()}"
            await asyncio.sleep(0.005)


async def _with_player(speaker: Speaker, scenario: Callable[[], Any]) -> None:
    task = asyncio.create_task(speaker.player.run())
    try:
        await scenario()
    finally:
        task.cancel()


def test_an_alert_interrupts_a_slot_and_the_slot_resumes_where_the_schedule_stands(tmp_path: Path) -> None:
    speaker = Speaker(tmp_path)

    async def scenario() -> None:
        start = speaker.clock.now()
        slot = {
            "id": 7,
            "starts_at": format_time(start),
            "ends_at": format_time(start + timedelta(seconds=120)),
            "program": _program("a", 120_000),
        }
        speaker.player.replace({"slots": [slot]})
        await speaker.until(lambda: speaker.player.playing == 7)
        speaker.give(alert_payload(speaker.clock, 1, level=3, key="b"))
        await speaker.until(lambda: speaker.stats.alerts_played == 1)
        await speaker.until(lambda: speaker.stats.played == 1)

    asyncio.run(_with_player(speaker, scenario))
    assert speaker.events() == [
        ("started", None, 7, None),
        ("interrupted", None, 7, "alert"),
        ("started", 1, None, None),
        ("completed", 1, None, None),
        ("started", None, 7, None),
        ("completed", None, 7, None),
    ]
    resumed = speaker.outbox.batch(real_now=speaker.clock.now() + timedelta(days=3650))[4]
    assert resumed["position_ms"] >= 19_000  # joined again after the 20 s alert, not from 0


def test_a_less_severe_alert_waits_and_a_more_severe_one_preempts(tmp_path: Path) -> None:
    speaker = Speaker(tmp_path)

    async def scenario() -> None:
        speaker.give(alert_payload(speaker.clock, 1, level=2, key="a"))
        await speaker.until(lambda: speaker.player.playing_alert is not None)
        speaker.give(alert_payload(speaker.clock, 2, level=4, key="b"))  # blue waits for orange
        await asyncio.sleep(0.02)
        speaker.give(alert_payload(speaker.clock, 3, level=1, key="c"))  # red preempts orange
        await speaker.until(lambda: speaker.stats.alerts_played == 3)

    asyncio.run(_with_player(speaker, scenario))
    assert speaker.events() == [
        ("started", 1, None, None),
        ("interrupted", 1, None, "preempted"),
        ("started", 3, None, None),
        ("completed", 3, None, None),
        ("started", 1, None, None),
        ("completed", 1, None, None),
        ("started", 2, None, None),
        ("completed", 2, None, None),
    ]


def test_each_revision_plays_once_and_a_newer_revision_replaces_the_playing_one(tmp_path: Path) -> None:
    speaker = Speaker(tmp_path)

    async def scenario() -> None:
        first = alert_payload(speaker.clock, 1, level=3, key="a")
        assert speaker.give(first)
        await speaker.until(lambda: speaker.player.playing_alert is not None)
        assert not speaker.give(first)  # the same alert again: ignored
        assert speaker.give(alert_payload(speaker.clock, 1, level=3, key="b", revision=2))
        await speaker.until(lambda: speaker.stats.alerts_played == 1)
        assert not speaker.give(first)  # an old revision after a newer one: ignored

    asyncio.run(_with_player(speaker, scenario))
    assert [(kind, reason) for kind, _, _, reason in speaker.events()] == [
        ("started", None),
        ("interrupted", "updated"),
        ("started", None),
        ("completed", None),
    ]


def test_a_cancel_stops_the_alert_plays_the_all_clear_and_a_late_copy_is_ignored(tmp_path: Path) -> None:
    speaker = Speaker(tmp_path)

    async def scenario() -> None:
        payload = alert_payload(speaker.clock, 1, level=2, key="a")
        speaker.give(payload)
        await speaker.until(lambda: speaker.player.playing_alert is not None)
        speaker.cancel(1, all_clear="d")
        await speaker.until(lambda: speaker.stats.alerts_played == 1)
        assert not speaker.give(payload)

    asyncio.run(_with_player(speaker, scenario))
    assert speaker.events() == [
        ("started", 1, None, None),
        ("interrupted", 1, None, "cancelled"),
        ("started", None, None, "all_clear"),
        ("completed", None, None, "all_clear"),
    ]


@pytest.mark.parametrize("seconds_left", [-1, 0])
def test_an_expired_alert_is_not_taken(tmp_path: Path, seconds_left: int) -> None:
    speaker = Speaker(tmp_path)
    payload = alert_payload(speaker.clock, 1, level=1, key="a")
    payload["valid_until"] = format_time(speaker.clock.now() + timedelta(seconds=seconds_left))
    assert not speaker.give(payload)
