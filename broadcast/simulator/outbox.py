"""Play events waiting to be uploaded: unique ids, batches, retries that never count twice."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

MAX_BATCH = 500
# The server refuses events more than 5 minutes in its future; hold them back with a margin
# (only an accelerated clock produces them).
FUTURE_MARGIN = timedelta(minutes=4)


@dataclass(frozen=True)
class Settled:
    accepted: int
    duplicates: int
    rejected: int


def make_event(
    kind: str,
    *,
    at: datetime,
    slot_id: int | None,
    program_sha256: str | None,
    position_ms: int | None = None,
    reason: str | None = None,
    alert: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """One play event; ``alert`` is (alert id, revision) for an alert's play."""
    event = {
        "id": str(uuid.uuid4()),
        "type": kind,
        "at": at.isoformat(),
        "slot_id": slot_id,
        "program_sha256": program_sha256,
        "position_ms": position_ms,
        "reason": reason,
    }
    if alert is not None:
        event["alert_id"], event["alert_revision"] = alert
    return event


class Outbox:
    """Events in the order they happened. An event leaves only when the server has answered for it.

    A batch that fails in transit is sent again with the same ids; the server deduplicates on
    (endpoint, id), so a retry after a lost response is counted once.
    """

    def __init__(self) -> None:
        self._pending: OrderedDict[str, tuple[datetime, dict[str, Any]]] = OrderedDict()

    def add(self, event: dict[str, Any], *, at: datetime) -> None:
        self._pending[event["id"]] = (at, event)

    def __len__(self) -> int:
        return len(self._pending)

    def batch(self, *, real_now: datetime, limit: int = MAX_BATCH) -> list[dict[str, Any]]:
        """Up to ``limit`` events that are not in the server's future, oldest first."""
        horizon = real_now + FUTURE_MARGIN
        ready = []
        for at, event in self._pending.values():
            if at > horizon:
                break
            ready.append(event)
            if len(ready) == limit:
                break
        return ready

    def settle(self, batch: list[dict[str, Any]], answer: dict[str, Any]) -> Settled:
        """Drop every event the server answered for (accepted, duplicate or rejected)."""
        for event in batch:
            self._pending.pop(event["id"], None)
        return Settled(
            accepted=int(answer.get("accepted", 0)),
            duplicates=int(answer.get("duplicates", 0)),
            rejected=len(answer.get("rejected", [])),
        )
