"""The simulator's verifier, written from the protocol document, against the server's signer."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broadcast.dispatch import envelope as server
from broadcast.simulator.verify import (
    PUSH_WINDOW,
    RUNDOWN_WINDOW,
    KeyRing,
    Refusal,
    Refused,
    ReplayWindow,
    b64url_encode,
    canonical,
    verify_envelope,
)

NOW = datetime(2026, 3, 14, 2, 13, tzinfo=UTC)


def _public(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b64url_encode(raw)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def ring(key: Ed25519PrivateKey) -> KeyRing:
    document = {"keys": [{"kid": "k1", "alg": "Ed25519", "public_key": _public(key), "active": True}]}
    return KeyRing.from_document(document)


def _payload(seq: int = 7, **extra: Any) -> dict[str, Any]:
    return {
        "type": "volume",
        "volume": 65,
        "seq": seq,
        "issued_at": "2026-03-14T02:13:00.000Z",
        "not_after": "2026-03-14T03:13:00.000Z",
        "note": "山洪预警 ✓",
        **extra,
    }


def test_canonical_bytes_match_the_server() -> None:
    payload = {"b": [1, {"z": None, "a": True}], "a": "村广播", "c": 1.5}
    assert canonical(payload) == server.canonical(payload)
    assert canonical(payload) == '{"a":"村广播","b":[1,{"a":true,"z":null}],"c":1.5}'.encode()


def test_accepts_what_the_server_seals(key: Ed25519PrivateKey, ring: KeyRing) -> None:
    sealed = server.seal(_payload(), kid="k1", private_key=key)
    assert verify_envelope(sealed, ring, now=NOW, window=ReplayWindow(highest=6)) == _payload()


def test_agrees_with_the_server_verifier(key: Ed25519PrivateKey, ring: KeyRing) -> None:
    sealed = server.seal(_payload(), kid="k1", private_key=key)
    public = {"k1": key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)}
    assert server.verify_envelope(sealed, public, now=NOW, last_seq=6) == verify_envelope(
        sealed, ring, now=NOW, window=ReplayWindow(highest=6)
    )


def _refusal(
    envelope: Any, ring: KeyRing, *, now: datetime = NOW, window: ReplayWindow | None = None
) -> Refusal:
    with pytest.raises(Refused) as caught:
        verify_envelope(envelope, ring, now=now, window=window or ReplayWindow())
    return caught.value.reason


def test_refuses_a_tampered_payload(key: Ed25519PrivateKey, ring: KeyRing) -> None:
    sealed = server.seal(_payload(), kid="k1", private_key=key)
    tampered = copy.deepcopy(sealed)
    tampered["payload"]["volume"] = 100
    assert _refusal(tampered, ring) is Refusal.forged


def test_refuses_a_message_signed_by_another_key(ring: KeyRing) -> None:
    impostor = Ed25519PrivateKey.generate()
    assert _refusal(server.seal(_payload(), kid="k1", private_key=impostor), ring) is Refusal.forged


def test_refuses_an_unpublished_kid(key: Ed25519PrivateKey, ring: KeyRing) -> None:
    assert _refusal(server.seal(_payload(), kid="k9", private_key=key), ring) is Refusal.unknown_key


def test_refuses_expired(key: Ed25519PrivateKey, ring: KeyRing) -> None:
    sealed = server.seal(_payload(), kid="k1", private_key=key)
    assert _refusal(sealed, ring, now=NOW + timedelta(hours=1, seconds=1)) is Refusal.expired
    at_the_limit = NOW + timedelta(hours=1)
    assert verify_envelope(sealed, ring, now=at_the_limit, window=ReplayWindow())["seq"] == 7


def _accept(envelope: Any, ring: KeyRing, window: ReplayWindow) -> int:
    seq = int(verify_envelope(envelope, ring, now=NOW, window=window)["seq"])
    window.accept(seq)
    return seq


def test_out_of_order_push_inside_the_window_is_accepted_once(key: Ed25519PrivateKey, ring: KeyRing) -> None:
    """Two server processes published 11 before 10 reached Redis: the alert 10 must still count."""
    sealed = {seq: server.seal(_payload(seq=seq), kid="k1", private_key=key) for seq in (9, 10, 11)}
    window = ReplayWindow(PUSH_WINDOW)
    assert [_accept(sealed[seq], ring, window) for seq in (9, 11, 10)] == [9, 11, 10]
    for seq in (9, 10, 11):
        assert _refusal(sealed[seq], ring, window=window) is Refusal.replayed
    assert window.highest == 11


def test_pushes_older_than_the_window_are_refused(key: Ed25519PrivateKey, ring: KeyRing) -> None:
    window = ReplayWindow(PUSH_WINDOW)
    _accept(server.seal(_payload(seq=100), kid="k1", private_key=key), ring, window)
    too_old = server.seal(_payload(seq=100 - PUSH_WINDOW), kid="k1", private_key=key)
    assert _refusal(too_old, ring, window=window) is Refusal.replayed
    oldest_inside = server.seal(_payload(seq=100 - PUSH_WINDOW + 1), kid="k1", private_key=key)
    assert _accept(oldest_inside, ring, window) == 100 - PUSH_WINDOW + 1
    _accept(server.seal(_payload(seq=200), kid="k1", private_key=key), ring, window)
    assert window.bitmap == 1  # the jump slid every earlier mark out of the window
    assert _accept(server.seal(_payload(seq=137), kid="k1", private_key=key), ring, window) == 137
    assert _refusal(server.seal(_payload(seq=136), kid="k1", private_key=key), ring, window=window) is (
        Refusal.replayed
    )


def test_the_rundown_stream_is_strictly_increasing(key: Ed25519PrivateKey, ring: KeyRing) -> None:
    window = ReplayWindow(RUNDOWN_WINDOW)
    _accept(server.seal(_payload(seq=8), kid="k1", private_key=key), ring, window)
    for seq in (7, 8):
        assert _refusal(server.seal(_payload(seq=seq), kid="k1", private_key=key), ring, window=window) is (
            Refusal.replayed
        )
    assert _accept(server.seal(_payload(seq=9), kid="k1", private_key=key), ring, window) == 9


def test_refuses_replayed_and_equal_seq(key: Ed25519PrivateKey, ring: KeyRing) -> None:
    sealed = server.seal(_payload(seq=7), kid="k1", private_key=key)
    assert _refusal(sealed, ring, window=ReplayWindow(highest=7)) is Refusal.replayed
    assert _refusal(sealed, ring, window=ReplayWindow(highest=7 + PUSH_WINDOW)) is Refusal.replayed


def test_forgery_with_an_old_seq_counts_as_forged(ring: KeyRing) -> None:
    impostor = Ed25519PrivateKey.generate()
    assert _refusal(
        server.seal(_payload(seq=1), kid="k1", private_key=impostor), ring, window=ReplayWindow(highest=5)
    ) is (Refusal.forged)


@pytest.mark.parametrize(
    "envelope",
    [
        None,
        [],
        {"payload": {}, "kid": "k1"},
        {"payload": "x", "kid": "k1", "sig": "AAAA"},
        {"payload": {}, "kid": 3, "sig": "AAAA"},
        {"payload": {}, "kid": "k1", "sig": "not base64!"},
    ],
)
def test_refuses_malformed_envelopes(envelope: Any, ring: KeyRing) -> None:
    assert _refusal(envelope, ring) is Refusal.malformed


@pytest.mark.parametrize(
    "change",
    [{"seq": "7"}, {"seq": True}, {"type": None}, {"not_after": "2026-03-14 03:13"}, {"not_after": 5}],
)
def test_refuses_signed_payloads_with_bad_fields(
    change: dict[str, Any], key: Ed25519PrivateKey, ring: KeyRing
) -> None:
    sealed = server.seal({**_payload(), **change}, kid="k1", private_key=key)
    assert _refusal(sealed, ring) is Refusal.malformed


def test_key_ring_skips_other_algorithms(key: Ed25519PrivateKey) -> None:
    document = {
        "keys": [
            {"kid": "k1", "alg": "Ed25519", "public_key": _public(key)},
            {"kid": "r1", "alg": "RS256", "public_key": "xyz"},
        ]
    }
    ring = KeyRing.from_document(document)
    assert "k1" in ring
    assert "r1" not in ring
