"""Plays the last verified rundown on the speaker's own clock, whatever the network does, and
lets alerts interrupt it (most severe first); when no alert is left the rundown resumes."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broadcast.simulator.alerts import AlertPlay
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

    Alerts come first, quiet hours or not: an alert arriving during a slot interrupts it
    (``reason="alert"``); the slot is joined again, at the right position, when no alert is left
    and its time is not over. A playing alert is interrupted only by a more severe one
    (``preempted``: played again from the start afterwards, if still valid), by a newer revision
    of itself (``updated``), by its cancel (``cancelled``) or by its end of validity (``expired``).
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
        self._alerts: dict[int, AlertPlay] = {}  # alert id -> what to play (newest revision)
        self._all_clears: list[AlertPlay] = []
        self.playing: int | None = None
        self.playing_alert: AlertPlay | None = None
        self.on_alert_start: list[Any] = []

    def now(self) -> datetime:
        return self._clock.now()

    # --- alerts -------------------------------------------------------------------------------

    def alert(self, alert: AlertPlay) -> None:
        """Queue a verified, new alert (its audio already fetched): it plays before any slot."""
        self._alerts[alert.alert_id] = alert
        self._changed.set()

    def cancel(self, alert_id: int, all_clear: AlertPlay | None) -> None:
        self._alerts.pop(alert_id, None)
        if all_clear is not None:
            self._all_clears.append(all_clear)
        self._changed.set()

    def _next_alert(self) -> AlertPlay | None:
        now = self._clock.now()
        for alert_id in [k for k, a in self._alerts.items() if a.valid_until <= now]:
            del self._alerts[alert_id]
        queued = list(self._alerts.values())
        if queued:
            return min(queued, key=lambda a: (a.level, a.alert_id))
        return self._all_clears[0] if self._all_clears else None

    def _why_stop(self, alert: AlertPlay) -> str | None:
        """Why the playing alert must stop now, if it must."""
        if alert.all_clear:
            nxt = self._next_alert()
            return "preempted" if nxt is not None and not nxt.all_clear else None
        current = self._alerts.get(alert.alert_id)
        if current is None:
            return "cancelled"
        if current.revision != alert.revision:
            return "updated"
        if self._clock.now() >= alert.valid_until:
            return "expired"
        nxt = self._next_alert()
        return "preempted" if nxt is not None and nxt.preempts(alert) else None

    async def _play_alert(self, alert: AlertPlay) -> None:
        now = self._clock.now()
        key = None if alert.all_clear else alert.key
        if alert.all_clear:
            self._all_clears.remove(alert)
        if not self._cache.has(alert.sha256):
            self._stats.failed += 1
            self._alerts.pop(alert.alert_id, None)
            self._record_alert("failed", alert, key, at=now, reason="audio_unavailable")
            return
        end = min(alert.valid_until, now + timedelta(milliseconds=alert.duration_ms * alert.repeat))
        self.playing_alert = alert
        self._record_alert("started", alert, key, at=now, position_ms=0)
        for hook in self.on_alert_start:
            hook(alert)
        try:
            while self._clock.now() < end:
                await self._wait_change(end)
                reason = self._why_stop(alert)
                if reason is not None:
                    stopped = self._clock.now()
                    elapsed = int((stopped - now).total_seconds() * 1000)
                    self._stats.alerts_interrupted += 1
                    self._record_alert(
                        "interrupted", alert, key, at=stopped, position_ms=elapsed, reason=reason
                    )
                    return
            self._stats.alerts_played += 1
            if not alert.all_clear:
                self._alerts.pop(alert.alert_id, None)
            played = int((end - now).total_seconds() * 1000)
            self._record_alert("completed", alert, key, at=end, position_ms=played)
        finally:
            self.playing_alert = None

    def _record_alert(
        self,
        kind: str,
        alert: AlertPlay,
        key: tuple[int, int] | None,
        *,
        at: datetime,
        position_ms: int | None = None,
        reason: str | None = None,
    ) -> None:
        """An alert's event names it; an all-clear's event names only its program."""
        event = make_event(
            kind,
            at=at,
            slot_id=None,
            program_sha256=alert.sha256,
            position_ms=position_ms,
            reason="all_clear" if key is None and reason is None else reason,
            alert=key,
        )
        self._outbox.add(event, at=at)

    # --- the rundown --------------------------------------------------------------------------

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
            alert = self._next_alert()
            if alert is not None:
                await self._play_alert(alert)
                continue
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
                if not await self._wait_change(slot.play_until()):
                    continue
                alert = self._next_alert() is not None
                if slot.id in self._slots and not alert:
                    continue
                now = self._clock.now()
                elapsed = int((now - slot.starts_at).total_seconds() * 1000)
                self._stats.interrupted += 1
                reason = "alert" if alert else "rundown_changed"
                self._record("interrupted", slot, at=now, position_ms=elapsed, reason=reason)
                if alert:
                    self._handled.discard(slot.id)  # joined again, late, once the alerts are over
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
