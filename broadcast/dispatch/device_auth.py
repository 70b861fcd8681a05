"""Device identity: a device is whoever its token says, on HTTP and on the WebSocket alike.

Nothing a device sends names its own endpoint; every route takes the endpoint from the token,
so asking for another speaker's data cannot even be expressed. Also bulk token provisioning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.auth.models import DeviceToken
from broadcast.auth.security import hash_device_token, new_device_token
from broadcast.clock import utc_now
from broadcast.deps import SessionDep
from broadcast.errors import BroadcastError, Forbidden, Unauthorized
from broadcast.regions.models import Endpoint, EndpointStatus
from broadcast.regions.tokens import authenticate_device

WS_UNKNOWN_TOKEN = 4401
WS_REFUSED = 4403


class TokenRevoked(Unauthorized):
    code = "token_revoked"


class EndpointDisabled(Forbidden):
    code = "endpoint_disabled"


def _revoked_or_unknown(session: Session, token: str, exc: Unauthorized) -> Unauthorized:
    row = session.exec(select(DeviceToken).where(DeviceToken.token_hash == hash_device_token(token))).first()
    if row is not None and row.revoked_at is not None:
        return TokenRevoked(exc.message)
    return exc


def authenticate_token(session: Session, token: str) -> Endpoint:
    """The endpoint a device token belongs to; 401 unknown, 401 ``token_revoked``, 403 disabled."""
    try:
        endpoint = authenticate_device(session, secret=token)
    except Unauthorized as exc:
        raise _revoked_or_unknown(session, token, exc) from None
    if endpoint.status == EndpointStatus.disabled:
        raise EndpointDisabled(f"终端 {endpoint.code} 已停用：请在管理后台启用后再连接")
    return endpoint


# The gateway authenticates the WebSocket handshake (or hello frame) with the same rules.
authenticate_ws_token = authenticate_token


def ws_close_code(error: BroadcastError) -> int:
    """The WebSocket close code for an authentication failure (see the protocol)."""
    return WS_REFUSED if isinstance(error, TokenRevoked | EndpointDisabled) else WS_UNKNOWN_TOKEN


_bearer = HTTPBearer(auto_error=False, scheme_name="DeviceToken", description="终端令牌 bcd_…")


def get_device(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Endpoint:
    if credentials is None:
        raise Unauthorized("缺少终端令牌：请求头须带 Authorization: Bearer bcd_…")
    return authenticate_token(session, credentials.credentials)


DeviceDep = Annotated[Endpoint, Depends(get_device)]


def provision_tokens(
    session: Session, *, endpoints: Sequence[Endpoint], scope: str, actor: Actor
) -> list[tuple[str, str]]:
    """New tokens for many endpoints at once, revoking their old ones: (code, secret) pairs.

    One audit entry for the batch: the tokens themselves (prefix, endpoint) are in device_tokens.
    """
    now = utc_now()
    ids = [endpoint.id for endpoint in endpoints]
    revoked = 0
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        result = session.execute(
            update(DeviceToken)
            .where(col(DeviceToken.endpoint_id).in_(chunk), col(DeviceToken.revoked_at).is_(None))
            .values(revoked_at=now)
        )
        revoked += result.rowcount  # type: ignore[attr-defined]
    made = [(endpoint, new_device_token()) for endpoint in endpoints]
    rows = [
        {"endpoint_id": e.id, "prefix": t.prefix, "token_hash": t.token_hash, "created_at": now}
        for e, t in made
    ]
    if rows:
        session.execute(insert(DeviceToken), rows)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="device_token.provision",
        entity_type="device_token",
        after={"scope": scope, "issued": len(rows), "revoked": revoked},
    )
    return [(endpoint.code, token.secret) for endpoint, token in made]
