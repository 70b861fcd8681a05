"""Password hashing (argon2), access tokens (JWT, HS256) and opaque device tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from pwdlib import PasswordHash

from broadcast.clock import utc_now

_hasher = PasswordHash.recommended()
_ALGORITHM = "HS256"
DEVICE_TOKEN_PREFIX = "bcd_"  # noqa: S105 - a visible prefix, not a secret


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """Check a password; the second value is a new hash when the parameters have changed."""
    return _hasher.verify_and_update(password, password_hash)


def issue_access_token(*, user_id: int, role: str, secret: str, minutes: int) -> tuple[str, datetime]:
    expires_at = utc_now() + timedelta(minutes=minutes)
    claims = {"sub": str(user_id), "role": role, "exp": expires_at, "typ": "access"}
    return jwt.encode(claims, secret, algorithm=_ALGORITHM), expires_at


def read_access_token(token: str, *, secret: str) -> int | None:
    """The user id a valid token names, or None for an expired, forged or malformed one."""
    try:
        claims = jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "access":
        return None
    try:
        return int(claims["sub"])
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class NewDeviceToken:
    secret: str
    prefix: str
    token_hash: str


def new_device_token() -> NewDeviceToken:
    secret = DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return NewDeviceToken(secret=secret, prefix=secret[:12], token_hash=hash_device_token(secret))


def hash_device_token(secret: str) -> str:
    # The secret carries 256 bits of entropy, so a fast hash is enough (no brute force possible).
    return hashlib.sha256(secret.encode()).hexdigest()
