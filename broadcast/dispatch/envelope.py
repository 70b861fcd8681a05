"""Signed envelopes (pure): the canonical encoding, sealing and the checks a device makes.

No database, clock or network here: the server signs through ``signing.py`` and the simulator
verifies with ``verify_envelope`` exactly as a speaker would (see docs/device-protocol.md).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"


class EnvelopeError(Exception):
    """A message a device must refuse and not act upon; ``reason`` names the refusal."""

    reason = "refused"


class Forged(EnvelopeError):
    reason = "forged"


class Malformed(Forged):
    """Not a well-formed envelope: treated like a forgery (nothing in it can be trusted)."""

    reason = "malformed"


class UnknownKey(EnvelopeError):
    reason = "unknown_key"


class Expired(EnvelopeError):
    reason = "expired"


class Replayed(EnvelopeError):
    reason = "replayed"


def canonical(payload: Mapping[str, Any]) -> bytes:
    """JSON with sorted keys, no whitespace, UTF-8 and non-ASCII unescaped: what signatures cover."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict: only the URL-safe alphabet, padding optional."""
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Malformed(f"not base64url: {text[:16]!r}") from exc


def format_time(at: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the millisecond."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: object) -> datetime:
    """An RFC 3339 time with an offset; anything else is malformed."""
    if not isinstance(text, str):
        raise Malformed("time is not a string")
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Malformed(f"not an RFC 3339 time: {text[:40]!r}") from exc
    if at.tzinfo is None:
        raise Malformed(f"time without an offset: {text[:40]!r}")
    return at


def seal(payload: Mapping[str, Any], *, kid: str, private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The envelope for a payload that already carries its type, seq, issued_at and not_after."""
    signature = private_key.sign(canonical(payload))
    return {"payload": dict(payload), "kid": kid, "sig": b64url_encode(signature)}


def _parts(envelope: object) -> tuple[dict[str, Any], str, bytes]:
    if not isinstance(envelope, Mapping):
        raise Malformed("envelope is not an object")
    payload, kid, sig = envelope.get("payload"), envelope.get("kid"), envelope.get("sig")
    if not isinstance(payload, dict) or not isinstance(kid, str) or not isinstance(sig, str):
        raise Malformed("envelope needs payload (object), kid and sig (strings)")
    return payload, kid, b64url_decode(sig)


def _check_signature(payload: dict[str, Any], signature: bytes, public_key: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, canonical(payload))
    except (InvalidSignature, ValueError) as exc:
        raise Forged("signature does not match the payload") from exc


def verify_envelope(
    envelope: object, public_keys: Mapping[str, bytes], *, now: datetime, last_seq: int | None
) -> dict[str, Any]:
    """The payload of a genuine, unexpired, fresh envelope; raises an ``EnvelopeError`` otherwise.

    ``last_seq`` is the highest seq already accepted on the payload's stream (None: none yet).
    The signature is checked before anything in the payload is believed.
    """
    payload, kid, signature = _parts(envelope)
    public_key = public_keys.get(kid)
    if public_key is None:
        raise UnknownKey(f"key {kid[:32]!r} is not published")
    _check_signature(payload, signature, public_key)
    seq = payload.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(payload.get("type"), str):
        raise Malformed("payload needs an integer seq and a type")
    if now > parse_time(payload.get("not_after")):
        raise Expired(f"expired at {payload['not_after']}")
    if last_seq is not None and seq <= last_seq:
        raise Replayed(f"seq {seq} is not after {last_seq}")
    return payload
