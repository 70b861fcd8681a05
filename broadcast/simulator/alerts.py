"""What a speaker knows about alerts (docs/device-protocol.md §6): the rules that make an alert
play exactly once, preempt by severity, and stop on cancel.

- an ``alert`` is taken if its revision is newer than any seen for that alert id, it is not
  cancelled and still valid; anything else is acknowledged and ignored;
- level 1 (I, red) is the most severe: a queued alert interrupts the one playing only if it is
  strictly more severe, or is a newer revision of the same alert;
- a ``cancel`` forgets the alert for good (a late copy of it is ignored) and may bring an
  all-clear program, played once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broadcast.simulator.verify import parse_time


@dataclass(frozen=True)
class AlertPlay:
    alert_id: int
    revision: int
    level: int
    drill: bool
    sha256: str
    duration_ms: int
    repeat: int
    valid_until: datetime
    url: str
    all_clear: bool = False  # the all-clear of a cancelled alert, not the alert itself

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> AlertPlay:
        program = payload["program"]
        return cls(
            alert_id=int(payload["alert_id"]),
            revision=int(payload["revision"]),
            level=int(payload["level"]),
            drill=bool(payload["drill"]),
            sha256=program["sha256"],
            duration_ms=int(program["duration_ms"]),
            repeat=max(1, int(payload.get("repeat", 1))),
            valid_until=parse_time(payload["valid_until"]),
            url=program["url"],
        )

    @classmethod
    def all_clear_of(cls, payload: dict[str, Any]) -> AlertPlay | None:
        program = payload.get("all_clear")
        if not isinstance(program, dict):
            return None
        return cls(
            alert_id=int(payload["alert_id"]),
            revision=int(payload.get("revision", 0)),
            level=4,
            drill=bool(payload.get("drill", False)),
            sha256=program["sha256"],
            duration_ms=int(program["duration_ms"]),
            repeat=1,
            valid_until=parse_time(payload["valid_until"]),
            url=program["url"],
            all_clear=True,
        )

    @property
    def key(self) -> tuple[int, int]:
        return self.alert_id, self.revision

    def preempts(self, playing: AlertPlay) -> bool:
        """Whether this one, arriving, stops ``playing`` at once."""
        if self.alert_id == playing.alert_id and not playing.all_clear:
            return self.revision > playing.revision
        return self.level < playing.level


@dataclass
class AlertBook:
    """Seen revisions and cancels (a real device keeps these in non-volatile storage)."""

    revisions: dict[int, int] = field(default_factory=dict)
    cancelled: set[int] = field(default_factory=set)

    def take(self, payload: dict[str, Any], *, now: datetime) -> AlertPlay | None:
        """The alert to play, or None when it must be ignored (repeat, old, cancelled, expired)."""
        alert = AlertPlay.from_payload(payload)
        if alert.alert_id in self.cancelled or alert.valid_until <= now:
            return None
        if self.revisions.get(alert.alert_id, 0) >= alert.revision:
            return None
        self.revisions[alert.alert_id] = alert.revision
        return alert

    def cancel(self, payload: dict[str, Any]) -> bool:
        """Record a cancel; False when it was already known."""
        alert_id = int(payload["alert_id"])
        if alert_id in self.cancelled:
            return False
        self.cancelled.add(alert_id)
        return True
