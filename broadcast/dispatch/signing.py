"""Signing rundowns and pushes: stamp the sequence and expiry, then seal with the active key.

The canonical encoding and the device-side checks live in the pure ``envelope`` module, which
the simulator imports; this module adds what needs the database (keys, sequence counters).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.dispatch import keys
from broadcast.dispatch.envelope import canonical, format_time, seal, verify_envelope
from broadcast.dispatch.models import SigningKey
from broadcast.dispatch.sequence import reserve, stream_for

__all__ = ["canonical", "sign", "sign_many", "verify"]


def _stamp(payload: Mapping[str, Any], *, seq: int, now: datetime, settings: Settings) -> dict[str, Any]:
    not_after = now + timedelta(seconds=settings.signature_ttl_s)
    return {**payload, "seq": seq, "issued_at": format_time(now), "not_after": format_time(not_after)}


def sign(
    session: Session, payload: Mapping[str, Any], *, settings: Settings, now: datetime | None = None
) -> dict[str, Any]:
    """The envelope of ``payload`` (which names its ``type``); seq, issued_at and not_after are set here."""
    return sign_many(session, [payload], settings=settings, now=now)[0]


def sign_many(
    session: Session,
    payloads: Sequence[Mapping[str, Any]],
    *,
    settings: Settings,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Envelopes for many payloads, in order, with one counter update per stream."""
    kid, private_key = keys.signer(session, settings=settings)
    now = now or utc_now()
    by_stream: dict[str, list[int]] = defaultdict(list)
    for index, payload in enumerate(payloads):
        message_type = payload.get("type")
        if not isinstance(message_type, str):
            raise ValueError("a signed payload needs a string 'type'")
        by_stream[stream_for(message_type)].append(index)
    seqs: dict[int, int] = {}
    for stream, indexes in by_stream.items():
        seqs.update(zip(indexes, reserve(session, stream, len(indexes)), strict=True))
    return [
        seal(_stamp(payload, seq=seqs[i], now=now, settings=settings), kid=kid, private_key=private_key)
        for i, payload in enumerate(payloads)
    ]


def verify(
    envelope: object, signing_keys: Iterable[SigningKey], *, now: datetime, last_seq: int | None = None
) -> dict[str, Any]:
    """``verify_envelope`` against key rows (tests and tools with database access)."""
    public = {key.kid: keys.public_key_bytes(key) for key in signing_keys}
    return verify_envelope(envelope, public, now=now, last_seq=last_seq)
