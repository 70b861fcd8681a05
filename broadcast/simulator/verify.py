"""Envelope verification, written from docs/device-protocol.md alone (no server imports).

A speaker vendor would write exactly this: the canonical encoding, Ed25519 over it, expiry, and
the anti-replay window per stream (64 for pushes, which two server processes may publish out of
order; 1, i.e. strictly increasing, for rundowns). Keeping it independent of the server's signer
is the proof that the document is complete; tests check the two agree.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Refusal(StrEnum):
    """Why a device refuses an envelope. It acts on none of them."""

    malformed = "malformed"
    unknown_key = "unknown_key"
    forged = "forged"
    expired = "expired"
    replayed = "replayed"


class Refused(Exception):
    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


def canonical(payload: Mapping[str, Any]) -> bytes:
    """JSON, keys sorted, no whitespace, UTF-8, non-ASCII as itself (the bytes that are signed)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def b64url_decode(text: str) -> bytes:
    """Strict: only the URL-safe alphabet; the padding is optional."""
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with an offset (``Z`` or ``+08:00``); naive times are refused."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time without offset: {text}")
    return moment


# Signature checks remembered per ring: a fleet in one process receives the same envelope
# thousands of times, and Ed25519 verification is deterministic.
_MEMO_SIZE = 1024


@dataclass
class KeyRing:
    """The published public keys, by kid (from ``GET /device/v1/keys``)."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    _memo: OrderedDict[tuple[str, bytes, bytes], bool] = field(default_factory=OrderedDict, repr=False)

    def signature_valid(self, kid: str, signature: bytes, message: bytes) -> bool:
        """Whether ``kid``'s key signed ``message`` (the caller has checked the kid is known)."""
        memo_key = (kid, signature, message)
        known = self._memo.get(memo_key)
        if known is None:
            try:
                self.keys[kid].verify(signature, message)
                known = True
            except InvalidSignature:
                known = False
            self._memo[memo_key] = known
            if len(self._memo) > _MEMO_SIZE:
                self._memo.popitem(last=False)
        return known

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> KeyRing:
        keys = {}
        for entry in document["keys"]:
            if entry.get("alg") != "Ed25519":
                continue
            raw = b64url_decode(entry["public_key"])
            keys[entry["kid"]] = Ed25519PublicKey.from_public_bytes(raw)
        return cls(keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self.keys


PUSH_WINDOW = 64
RUNDOWN_WINDOW = 1


@dataclass
class ReplayWindow:
    """The seqs of one stream already accepted, as in IPsec/DTLS anti-replay (§3.2).

    ``highest`` is the highest accepted seq; bit ``i`` of ``bitmap`` says whether
    ``highest - i`` was accepted (bit 0 is ``highest`` itself). A seq above ``highest`` is
    new; one within ``size`` below it is new if its bit is clear; anything older is refused.
    """

    size: int = PUSH_WINDOW
    highest: int = 0
    bitmap: int = 1

    def fresh(self, seq: int) -> bool:
        if seq > self.highest:
            return True
        age = self.highest - seq
        return age < self.size and not (self.bitmap >> age) & 1

    def accept(self, seq: int) -> None:
        """Remember ``seq`` (the caller has checked it is fresh)."""
        if seq > self.highest:
            self.bitmap = ((self.bitmap << (seq - self.highest)) | 1) & ((1 << self.size) - 1)
            self.highest = seq
        else:
            self.bitmap |= 1 << (self.highest - seq)


def verify_envelope(
    envelope: Mapping[str, Any], ring: KeyRing, *, now: datetime, window: ReplayWindow
) -> dict[str, Any]:
    """The payload of a valid envelope; raises ``Refused`` otherwise.

    Order matters: the signature is checked before any field is trusted, so a forged payload
    with an old ``seq`` counts as forged, not as replayed. The window is only read: the caller
    calls ``window.accept(seq)`` once it accepts the payload.
    """
    try:
        payload = envelope["payload"]
        kid = envelope["kid"]
        signature = b64url_decode(envelope["sig"])
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise Refused(Refusal.malformed, f"envelope shape: {exc!r}") from exc
    if not isinstance(payload, dict) or not isinstance(kid, str):
        raise Refused(Refusal.malformed, "payload must be an object and kid a string")
    if kid not in ring.keys:
        raise Refused(Refusal.unknown_key, f"kid {kid!r} is not published")
    if not ring.signature_valid(kid, signature, canonical(payload)):
        raise Refused(Refusal.forged, f"bad signature for kid {kid}")
    seq = payload.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(payload.get("type"), str):
        raise Refused(Refusal.malformed, "payload needs an integer seq and a string type")
    try:
        not_after = parse_time(payload["not_after"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused(Refusal.malformed, f"not_after: {exc!r}") from exc
    if now > not_after:
        raise Refused(Refusal.expired, f"not_after {payload['not_after']} has passed")
    if not window.fresh(seq):
        raise Refused(Refusal.replayed, f"seq {seq} already accepted or older than the window")
    return payload
