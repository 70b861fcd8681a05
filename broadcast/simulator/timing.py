"""The simulated speaker's own clock (optionally accelerated) and its reconnect back-off."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


class VirtualClock:
    """Wall time that runs ``speed`` times faster than real time from the moment it was made.

    Every speaker of a fleet shares one clock, as if their NTP-synchronised clocks were all
    fast-forwarded together. ``monotonic`` is injectable so tests need not sleep.
    """

    def __init__(
        self,
        *,
        speed: float = 1.0,
        origin: datetime | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin = origin or datetime.now(UTC)
        if self._origin.tzinfo is None:
            raise ValueError("origin must be timezone-aware")
        self._monotonic = monotonic
        self._start = monotonic()

    def now(self) -> datetime:
        elapsed = (self._monotonic() - self._start) * self.speed
        return self._origin + timedelta(seconds=elapsed)

    def real_seconds_until(self, moment: datetime) -> float:
        """How long to sleep in real time until the clock shows ``moment`` (0 if it has)."""
        return max(0.0, (moment - self.now()).total_seconds() / self.speed)

    async def sleep_until(self, moment: datetime) -> None:
        # Sleep in bounded steps so a long wait still ends on time if the loop was busy.
        while (left := self.real_seconds_until(moment)) > 0:
            await asyncio.sleep(min(left, 30.0))

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of virtual time."""
        await asyncio.sleep(max(0.0, seconds) / self.speed)


# After the server went away (1001, 1012, or a welcomed connection broke without a close
# frame): this many quick attempts, each after a delay uniform in [0, RESTART_SPREAD_S].
RESTART_ATTEMPTS = 3
RESTART_SPREAD_S = 10.0
# After 1013 (gateway busy): a delay uniform in this range, the schedule untouched.
BUSY_DELAY_S = (1.0, 10.0)


@dataclass
class Backoff:
    """Reconnect delays (docs/device-protocol.md §7).

    The schedule: 1 s, 2 s, 4 s ... capped at 60 s, each with +-20 % jitter; ``reset()`` after a
    connection that stayed up; a flood close (4429) jumps straight to the cap. Two exceptions
    that do not move the schedule: ``server_went_away()`` grants ``RESTART_ATTEMPTS`` quick
    attempts spread over ``RESTART_SPREAD_S`` (a restarting gateway is back in seconds, and a
    long back-off would only delay the whole city), and ``busy_delay()`` answers 1013.
    """

    base_s: float = 1.0
    cap_s: float = 60.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0
    quick_left: int = 0

    def nominal(self, attempt: int) -> float:
        return min(self.cap_s, self.base_s * 2.0 ** min(attempt, 32))

    def next_delay(self) -> float:
        if self.quick_left > 0:
            self.quick_left -= 1
            return self.rng.uniform(0.0, RESTART_SPREAD_S)
        nominal = self.nominal(self.attempt)
        self.attempt += 1
        return nominal * self.rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)

    def busy_delay(self) -> float:
        return self.rng.uniform(*BUSY_DELAY_S)

    def server_went_away(self) -> None:
        self.quick_left = RESTART_ATTEMPTS

    def connected(self) -> None:
        """A welcome: any quick attempts left are void (the next loss decides anew)."""
        self.quick_left = 0

    def reset(self) -> None:
        self.attempt = 0

    def saturate(self) -> None:
        self.quick_left = 0
        while self.nominal(self.attempt) < self.cap_s:
            self.attempt += 1
