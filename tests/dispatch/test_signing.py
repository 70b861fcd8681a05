"""Envelopes: the canonical encoding, and every way a device refuses a message."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Engine
from sqlmodel import Session

from broadcast.config import Settings
from broadcast.db import transaction
from broadcast.dispatch import keys, sequence, signing
from broadcast.dispatch.envelope import (
    Expired,
    Forged,
    Malformed,
    Replayed,
    UnknownKey,
    b64url_decode,
    canonical,
    format_time,
    seal,
    verify_envelope,
)

NOW = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
PRIVATE = Ed25519PrivateKey.generate()
PUBLIC = {"k1": PRIVATE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)}


def payload(seq: int = 7, *, not_after: datetime = NOW + timedelta(hours=1), **extra: Any) -> dict[str, Any]:
    return {
        "type": "volume",
        "seq": seq,
        "issued_at": format_time(NOW),
        "not_after": format_time(not_after),
        "volume": 60,
        **extra,
    }


def test_canonical_is_sorted_compact_utf8() -> None:
    assert canonical({"b": 1, "a": {"d": [1, 2], "c": "村"}}) == '{"a":{"c":"村","d":[1,2]},"b":1}'.encode()


def test_genuine_envelope_verifies() -> None:
    envelope = seal(payload(), kid="k1", private_key=PRIVATE)
    assert verify_envelope(envelope, PUBLIC, now=NOW, last_seq=6) == payload()
    assert verify_envelope(envelope, PUBLIC, now=NOW, last_seq=None)["seq"] == 7


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e["payload"].update(volume=100),
        lambda e: e["payload"].update(seq=99),
        lambda e: e["payload"].update(extra="x"),
        lambda e: e.update(sig=e["sig"][:-2] + ("AA" if e["sig"][-2:] != "AA" else "AB")),
    ],
    ids=["value", "seq", "added-field", "signature"],
)
def test_any_change_is_forged(tamper: Any) -> None:
    envelope = seal(payload(), kid="k1", private_key=PRIVATE)
    tamper(envelope)
    with pytest.raises(Forged):
        verify_envelope(envelope, PUBLIC, now=NOW, last_seq=None)


def test_every_single_byte_of_the_payload_is_covered() -> None:
    envelope = seal(payload(), kid="k1", private_key=PRIVATE)
    body = canonical(envelope["payload"])
    for index in range(len(body)):
        changed = bytearray(body)
        changed[index] ^= 0x01
        try:
            forged = {**envelope, "payload": json.loads(changed.decode())}
        except ValueError:
            continue  # not JSON any more: a device cannot even read it
        if canonical(forged["payload"]) == body:
            continue
        with pytest.raises(Forged):
            verify_envelope(forged, PUBLIC, now=NOW, last_seq=None)


def test_signed_by_another_key_is_forged() -> None:
    envelope = seal(payload(), kid="k1", private_key=Ed25519PrivateKey.generate())
    with pytest.raises(Forged):
        verify_envelope(envelope, PUBLIC, now=NOW, last_seq=None)


def test_unknown_kid() -> None:
    envelope = seal(payload(), kid="k9", private_key=PRIVATE)
    with pytest.raises(UnknownKey):
        verify_envelope(envelope, PUBLIC, now=NOW, last_seq=None)


def test_expired() -> None:
    envelope = seal(payload(not_after=NOW - timedelta(seconds=1)), kid="k1", private_key=PRIVATE)
    with pytest.raises(Expired):
        verify_envelope(envelope, PUBLIC, now=NOW, last_seq=None)
    assert verify_envelope(envelope, PUBLIC, now=NOW - timedelta(seconds=1), last_seq=None)


@pytest.mark.parametrize("last_seq", [7, 8])
def test_replayed(last_seq: int) -> None:
    envelope = seal(payload(7), kid="k1", private_key=PRIVATE)
    with pytest.raises(Replayed):
        verify_envelope(envelope, PUBLIC, now=NOW, last_seq=last_seq)


@pytest.mark.parametrize(
    "envelope",
    [
        None,
        [],
        {"payload": {}, "kid": "k1"},
        {"payload": "x", "kid": "k1", "sig": "AA"},
        {"payload": {}, "kid": "k1", "sig": "not base64!"},
    ],
)
def test_malformed(envelope: Any) -> None:
    with pytest.raises(Malformed):
        verify_envelope(envelope, PUBLIC, now=NOW, last_seq=None)


def test_signed_payload_without_seq_or_expiry_is_malformed() -> None:
    for broken in ({"type": "x", "not_after": format_time(NOW)}, {"type": "x", "seq": 1}, {"seq": 1}):
        with pytest.raises(Malformed):
            verify_envelope(seal(broken, kid="k1", private_key=PRIVATE), PUBLIC, now=NOW, last_seq=None)


def test_server_signatures_verify_with_the_published_keys(session: Session, settings: Settings) -> None:
    first = signing.sign(session, {"type": "rundown_changed"}, settings=settings, now=NOW)
    second = signing.sign(session, {"type": "volume", "volume": 30}, settings=settings, now=NOW)
    rundown = signing.sign(session, {"type": "rundown", "slots": []}, settings=settings, now=NOW)
    published = keys.published_keys(session, settings=settings, now=NOW)
    public = {key.kid: b64url_decode(key.public_key) for key in published}
    body = verify_envelope(first, public, now=NOW, last_seq=None)
    assert body["not_after"] == format_time(NOW + timedelta(seconds=settings.signature_ttl_s))
    assert body["issued_at"] == "2026-10-01T08:00:00.000Z"
    assert verify_envelope(second, public, now=NOW, last_seq=body["seq"])["seq"] == body["seq"] + 1
    assert signing.verify(rundown, published, now=NOW)["seq"] == 1  # its own stream
    with pytest.raises(Expired):
        signing.verify(rundown, published, now=NOW + timedelta(seconds=settings.signature_ttl_s + 1))


def test_sign_many_numbers_each_stream_in_order(session: Session, settings: Settings) -> None:
    messages = [{"type": "volume", "volume": v} for v in range(3)] + [{"type": "rundown"}]
    envelopes = signing.sign_many(session, messages, settings=settings, now=NOW)
    assert [e["payload"]["seq"] for e in envelopes] == [1, 2, 3, 1]
    assert signing.sign(session, {"type": "volume"}, settings=settings)["payload"]["seq"] == 4
    with pytest.raises(ValueError, match="type"):
        signing.sign(session, {"volume": 1}, settings=settings)


def test_sequences_never_repeat_across_concurrent_writers(engine: Engine) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(10):
            with transaction(engine) as session:
                got = sequence.reserve(session, "test", 3)
            with lock:
                seen.extend(got)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == list(range(1, 121))
    with transaction(engine) as session:
        assert sequence.next_seq(session, "test") == 121
