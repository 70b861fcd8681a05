"""The worked example in docs/device-protocol.md is true: same key, bytes and signature as the server."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broadcast.dispatch import envelope as server
from broadcast.simulator.verify import (
    KeyRing,
    Refusal,
    Refused,
    ReplayWindow,
    b64url_encode,
    canonical,
    verify_envelope,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "device-protocol.md"


def _example() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### 3.4 Worked example") : text.index("## 4. HTTP API")]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, flags=re.S)
    plain = [body.strip() for lang, body in blocks if lang == ""]
    frames = [json.loads(body) for lang, body in blocks if lang == "json"]
    seed, public, canonical_text, canonical_hex, signature = plain
    return {
        "seed": bytes.fromhex(seed),
        "public": public,
        "canonical": canonical_text.encode(),
        "hex": canonical_hex,
        "sig": signature,
        "payload": frames[0],
        "frame": frames[1],
    }


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return _example()


def test_the_documented_key_bytes_and_signature_are_what_the_server_makes(example: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.from_private_bytes(example["seed"])
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert b64url_encode(raw) == example["public"]
    assert server.canonical(example["payload"]) == example["canonical"] == canonical(example["payload"])
    assert example["canonical"].hex() == example["hex"]
    sealed = server.seal(example["payload"], kid="k20260601-3f9a0c1e", private_key=key)
    assert sealed["sig"] == example["sig"]
    assert example["frame"] == {"type": "push", "envelope": sealed}


def test_the_documented_outcomes_hold(example: dict[str, Any]) -> None:
    envelope = example["frame"]["envelope"]
    ring = KeyRing.from_document(
        {"keys": [{"kid": envelope["kid"], "alg": "Ed25519", "public_key": example["public"]}]}
    )
    at = datetime(2026, 6, 1, 18, 20, tzinfo=UTC)
    window = ReplayWindow(highest=1037)
    assert verify_envelope(envelope, ring, now=at, window=window)["volume"] == 65
    window.accept(1042)
    late = datetime(2026, 6, 1, 19, 13, 0, 1000, tzinfo=UTC)
    tampered = copy.deepcopy(envelope)
    tampered["payload"]["volume"] = 66
    for candidate, now, seen, reason in [
        (envelope, late, ReplayWindow(highest=1037), Refusal.expired),
        (envelope, at, window, Refusal.replayed),
        (tampered, at, ReplayWindow(highest=1037), Refusal.forged),
    ]:
        with pytest.raises(Refused) as caught:
            verify_envelope(candidate, ring, now=now, window=seen)
        assert caught.value.reason is reason
