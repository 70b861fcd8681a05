"""The platform's Ed25519 signing keys: one active key signs, retired keys stay published.

Private keys are stored encrypted (AES-256-GCM, the key id as associated data) under a key
derived from ``settings.secret_key`` with HKDF, so a database dump alone cannot sign. If the
secret changes, the old private key cannot be opened any more: the service logs it and rotates
to a fresh key; the old public key stays published so envelopes it signed still verify.
A retired key is published for ``signature_ttl_s`` after retirement: by then everything it
signed has expired (``signing.sign`` never issues a longer expiry).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlmodel import Session, col, or_, select

from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.dispatch.envelope import Malformed, b64url_decode, b64url_encode
from broadcast.dispatch.models import SigningKey
from broadcast.dispatch.sequence import reserve

log = logging.getLogger(__name__)

_WRAP_VERSION = "v1"
_NONCE_BYTES = 12
# Taking this counter serialises key changes across processes (row lock / SQLite write lock).
_LOCK = "lock:signing_keys"


class KeyUnavailable(Exception):
    """A stored private key cannot be decrypted with the current secret key."""


@lru_cache(maxsize=4)
def _wrapper(secret: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"broadcast/signing-keys", info=b"wrap v1")
    return AESGCM(hkdf.derive(secret.encode("utf-8")))


def encrypt_private_key(raw: bytes, *, secret: str, kid: str) -> str:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = _wrapper(secret).encrypt(nonce, raw, kid.encode("utf-8"))
    return f"{_WRAP_VERSION}.{b64url_encode(nonce + sealed)}"


def decrypt_private_key(token: str, *, secret: str, kid: str) -> bytes:
    version, _, body = token.partition(".")
    try:
        if version != _WRAP_VERSION:
            raise KeyUnavailable(f"unknown key wrapping {version!r}")
        data = b64url_decode(body)
        return _wrapper(secret).decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], kid.encode("utf-8"))
    except (InvalidTag, Malformed, ValueError) as exc:
        raise KeyUnavailable(f"private key of {kid} cannot be decrypted with the current secret") from exc


@lru_cache(maxsize=16)
def _private_key(kid: str, token: str, secret: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(decrypt_private_key(token, secret=secret, kid=kid))


def key_snapshot(key: SigningKey) -> dict[str, Any]:
    return key.model_dump(mode="json", exclude={"private_key_encrypted"})


def public_key_bytes(key: SigningKey) -> bytes:
    return b64url_decode(key.public_key)


def _new_key(session: Session, *, secret: str, now: datetime) -> SigningKey:
    kid = f"k{now:%Y%m%d}-{secrets.token_hex(4)}"
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key = SigningKey(
        kid=kid,
        public_key=b64url_encode(raw_public),
        private_key_encrypted=encrypt_private_key(raw_private, secret=secret, kid=kid),
        active=True,
        created_at=now,
    )
    session.add(key)
    session.flush()
    return key


def active_key(session: Session) -> SigningKey | None:
    query = select(SigningKey).where(col(SigningKey.active).is_(True)).order_by(col(SigningKey.id).desc())
    return session.exec(query).first()


def ensure_active_key(session: Session, *, settings: Settings) -> SigningKey:
    """The active key, made on first use (once, even when several processes ask at once)."""
    key = active_key(session)
    if key is not None:
        return key
    reserve(session, _LOCK, 1)
    key = active_key(session)
    if key is not None:
        return key
    key = _new_key(session, secret=settings.secret_key, now=utc_now())
    audit.record(
        session,
        actor=audit.SYSTEM,
        action="signing_key.create",
        entity_type="signing_key",
        entity_id=key.kid,
        after=key_snapshot(key),
    )
    return key


def rotate_key(session: Session, *, settings: Settings, actor: Actor, reason: str = "manual") -> SigningKey:
    """Retire the active key (it stays published) and make a new one active."""
    reserve(session, _LOCK, 1)
    now = utc_now()
    retired = list(session.exec(select(SigningKey).where(col(SigningKey.active).is_(True))).all())
    for old in retired:
        old.active, old.retired_at = False, now
        session.add(old)
    session.flush()
    key = _new_key(session, secret=settings.secret_key, now=now)
    audit.record(
        session,
        actor=actor,
        action="signing_key.rotate",
        entity_type="signing_key",
        entity_id=key.kid,
        before={"retired": [key_snapshot(old) for old in retired]},
        after={**key_snapshot(key), "reason": reason},
    )
    return key


def signer(session: Session, *, settings: Settings) -> tuple[str, Ed25519PrivateKey]:
    """The active key id and its private key, rotating if the secret key no longer opens it."""
    key = ensure_active_key(session, settings=settings)
    try:
        return key.kid, _private_key(key.kid, key.private_key_encrypted, settings.secret_key)
    except KeyUnavailable:
        log.warning("签名密钥 %s 无法用当前 secret_key 解密（密钥已更换？），自动轮换为新密钥", key.kid)
    fresh = rotate_key(session, settings=settings, actor=audit.SYSTEM, reason="secret_key_changed")
    return fresh.kid, _private_key(fresh.kid, fresh.private_key_encrypted, settings.secret_key)


def is_published(key: SigningKey, *, settings: Settings, now: datetime) -> bool:
    cutoff = now - timedelta(seconds=settings.signature_ttl_s)
    return key.active or (key.retired_at is not None and key.retired_at > cutoff)


def published_keys(session: Session, *, settings: Settings, now: datetime) -> list[SigningKey]:
    """What devices may trust: the active key and keys retired less than one signature TTL ago."""
    cutoff = now - timedelta(seconds=settings.signature_ttl_s)
    query = select(SigningKey).where(
        or_(col(SigningKey.active).is_(True), col(SigningKey.retired_at) > cutoff)
    )
    return list(session.exec(query.order_by(col(SigningKey.id).desc())).all())


def list_keys(session: Session) -> list[SigningKey]:
    return list(session.exec(select(SigningKey).order_by(col(SigningKey.id).desc())).all())
