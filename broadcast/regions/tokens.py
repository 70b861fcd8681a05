"""Device tokens: how an endpoint proves who it is.

Issuing is a rotation: a new token revokes every still-active token of the endpoint, so a
speaker has at most one working credential and a leaked old one dies the moment a new one is
issued. The secret is returned once and only its sha256 is stored; the audit log sees the prefix.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, select

from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.auth.models import DeviceToken
from broadcast.auth.security import hash_device_token, new_device_token
from broadcast.clock import utc_now
from broadcast.errors import Conflict, NotFound, Unauthorized
from broadcast.regions.models import Endpoint


def _token_snapshot(token: DeviceToken, endpoint: Endpoint) -> dict[str, object]:
    return {**(audit.snapshot(token) or {}), "endpoint_code": endpoint.code}


def issue_token(session: Session, *, endpoint: Endpoint, actor: Actor) -> tuple[DeviceToken, str, list[int]]:
    """A new token (row, secret, ids of the tokens it revoked)."""
    now = utc_now()
    active = session.exec(
        select(DeviceToken).where(
            DeviceToken.endpoint_id == endpoint.id, col(DeviceToken.revoked_at).is_(None)
        )
    ).all()
    for old in active:
        old.revoked_at = now
        session.add(old)
    made = new_device_token()
    token = DeviceToken(endpoint_id=endpoint.id or 0, prefix=made.prefix, token_hash=made.token_hash)
    session.add(token)
    session.flush()
    revoked = sorted(old.id or 0 for old in active)
    audit.record(
        session,
        actor=actor,
        action="device_token.issue",
        entity_type="device_token",
        entity_id=token.id,
        after={**_token_snapshot(token, endpoint), "revoked_token_ids": revoked},
    )
    return token, made.secret, revoked


def list_tokens(session: Session, *, endpoint: Endpoint) -> list[DeviceToken]:
    query = select(DeviceToken).where(DeviceToken.endpoint_id == endpoint.id)
    return list(session.exec(query.order_by(col(DeviceToken.id).desc())).all())


def revoke_token(session: Session, *, endpoint: Endpoint, token_id: int, actor: Actor) -> DeviceToken:
    token = session.get(DeviceToken, token_id)
    if token is None or token.endpoint_id != endpoint.id:
        raise NotFound(f"终端 {endpoint.code} 没有编号为 {token_id} 的令牌")
    if token.revoked_at is not None:
        raise Conflict(
            f"令牌 {token.prefix}… 已于 {token.revoked_at.isoformat()} 吊销，无需重复操作",
            details={"revoked_at": token.revoked_at.isoformat()},
        )
    before = _token_snapshot(token, endpoint)
    token.revoked_at = utc_now()
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="device_token.revoke",
        entity_type="device_token",
        entity_id=token.id,
        before=before,
        after=_token_snapshot(token, endpoint),
    )
    return token


LAST_USED_RESOLUTION = timedelta(minutes=5)


def authenticate_device(session: Session, *, secret: str) -> Endpoint:
    """The endpoint a device secret belongs to; records when the token was last used."""
    token = session.exec(
        select(DeviceToken).where(DeviceToken.token_hash == hash_device_token(secret))
    ).first()
    if token is None:
        raise Unauthorized("终端令牌无效：请在管理后台为该终端签发新令牌并写入设备")
    if token.revoked_at is not None:
        raise Unauthorized(
            f"终端令牌 {token.prefix}… 已于 {token.revoked_at.isoformat()} 吊销：请使用最新签发的令牌"
        )
    now = utc_now()
    # Thousands of speakers authenticate all day: refresh the mark only when it is stale, so a
    # read (a rundown or audio fetch) does not become a write every time.
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.add(token)
        session.flush()
    return session.get_one(Endpoint, token.endpoint_id)
