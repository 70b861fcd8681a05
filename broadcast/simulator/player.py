"""Plays the last verified rundown on the speaker's own clock, whatever the network does."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broadcast.simulator.audio import AudioCache
from broadcast.simulator.outbox import Outbox, make_event
from broadcast.simulator.stats import FleetStats
from broadcast.simulator.timing import VirtualClock
from broadcast.simulator.verify import parse_time


@dataclass(frozen=True)
class Slot:
    id: int
    starts_at: datetime
    ends_at: datetime
    sha256: str
    duration_ms: int

    @classmethod
    def from_payload(cls, slot: dict[str, Any]) -> Slot:
        program = slot["program"]
        return cls(
            id=int(slot["id"]),
            starts_at=parse_time(slot["starts_at"]),
            ends_at=parse_time(slot["ends_at"]),
            sha256=program["sha256"],
            duration_ms=int(program["duration_ms"]),
        )

    def play_until(self) -> datetime:
        """The program's end, cut at the slot's end."""
        return min(self.ends_at, self.starts_at + timedelta(milliseconds=self.duration_ms))


class Player:
    """Waits for each slot's start on the clock, 'plays' it and records what happened.

    A slot that has already begun when the speaker learns of it (after a power cut) is joined
    late, at the right position. A slot dropped from a newer rundown while it plays is
    interrupted. A slot whose audio is not cached fails with ``audio_unavailable``.
    """

    def __init__(self, *, clock: VirtualClock, cache: AudioCache, outbox: Outbox, stats: FleetStats) -> None:
        self._clock = clock
        self._cache = cache
        self._outbox = outbox
        self._stats = stats
        self._rundown: dict[str, Any] | None = None
        self._slots: dict[int, Slot] = {}
        self._handled: set[int] = set()
        self._changed = asyncio.Event()
        self.playing: int | None = None

    def replace(self, rundown: dict[str, Any]) -> None:
        self._rundown = rundown
        self._slots = {slot.id: slot for slot in map(Slot.from_payload, rundown.get("slots", []))}
        self._changed.set()

    def programs(self) -> list[dict[str, Any]]:
        """Each distinct program the current rundown names (to download ahead)."""
        seen: dict[str, dict[str, Any]] = {}
        for slot in (self._rundown or {}).get("slots", []):
            seen.setdefault(slot["program"]["sha256"], slot["program"])
        return list(seen.values())

    def _next(self) -> Slot | None:
        now = self._clock.now()
        waiting = [s for s in self._slots.values() if s.id not in self._handled and s.play_until() > now]
        return min(waiting, key=lambda s: (s.starts_at, s.id), default=None)

    async def _wait_change(self, until: datetime | None) -> bool:
        """Sleep until ``until`` on the clock (forever if None); True if the rundown changed first."""
        timeout = None if until is None else self._clock.real_seconds_until(until)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
        changed = self._changed.is_set()
        self._changed.clear()
        return changed

    async def run(self) -> None:
        while True:
            slot = self._next()
            if slot is None:
                await self._wait_change(None)
                continue
            if slot.starts_at > self._clock.now() and await self._wait_change(slot.starts_at):
                continue
            self._handled.add(slot.id)
            await self._play(slot)

    async def _play(self, slot: Slot) -> None:
        now = self._clock.now()
        if not self._cache.has(slot.sha256):
            self._stats.failed += 1
            self._record("failed", slot, at=now, reason="audio_unavailable")
            return
        position = max(0, int((now - slot.starts_at).total_seconds() * 1000))
        self.playing = slot.id
        self._stats.started += 1
        self._record("started", slot, at=now, position_ms=position)
        try:
            while self._clock.now() < slot.play_until():
                if await self._wait_change(slot.play_until()) and slot.id not in self._slots:
                    now = self._clock.now()
                    elapsed = int((now - slot.starts_at).total_seconds() * 1000)
                    self._stats.interrupted += 1
                    self._record("interrupted", slot, at=now, position_ms=elapsed, reason="rundown_changed")
                    return
            self._stats.played += 1
            end = slot.play_until()
            played_ms = int((end - slot.starts_at).total_seconds() * 1000)
            self._record("completed", slot, at=end, position_ms=played_ms)
        finally:
            self.playing = None

    def _record(
        self,
        kind: str,
        slot: Slot,
        *,
        at: datetime,
        position_ms: int | None = None,
        reason: str | None = None,
    ) -> None:
        event = make_event(
            kind, at=at, slot_id=slot.id, program_sha256=slot.sha256, position_ms=position_ms, reason=reason
        )
        self._outbox.add(event, at=at)
