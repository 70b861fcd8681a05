"""Device identity: a device is whoever its token says, on HTTP and on the WebSocket alike.

Nothing a device sends names its own endpoint; every route takes the endpoint from the token,
so asking for another speaker's data cannot even be expressed. The gateway checks the tokens of
many handshakes at once (``check_ws_tokens``), with the same rules. Also bulk token provisioning.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import insert, update
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.auth.models import DeviceToken
from broadcast.auth.security import hash_device_token, new_device_token
from broadcast.clock import utc_now
from broadcast.deps import SessionDep
from broadcast.errors import Forbidden, Unauthorized
from broadcast.regions.models import Endpoint, EndpointStatus
from broadcast.regions.tokens import LAST_USED_RESOLUTION, authenticate_device

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


@dataclass(frozen=True)
class TokenOwner:
    endpoint_id: int
    code: str


@dataclass(frozen=True)
class TokenRefusal:
    close_code: int
    reason: str  # the HTTP error code of the same refusal: unauthorized, token_revoked, ...


def check_ws_tokens(
    session: Session, token_hashes: Collection[str], *, now: datetime
) -> dict[str, TokenOwner | TokenRefusal]:
    """The verdict on each token hash, in one query: ``authenticate_token``'s rules for a batch.

    Stale last-use marks of valid tokens are refreshed in one UPDATE (same 5-minute resolution).
    """
    if not token_hashes:
        return {}
    query = (
        sql_select(
            col(DeviceToken.token_hash),
            col(DeviceToken.id),
            col(DeviceToken.revoked_at),
            col(DeviceToken.last_used_at),
            col(Endpoint.id),
            col(Endpoint.code),
            col(Endpoint.status),
        )
        .join(Endpoint, col(Endpoint.id) == DeviceToken.endpoint_id)
        .where(col(DeviceToken.token_hash).in_(sorted(token_hashes)))
    )
    verdicts: dict[str, TokenOwner | TokenRefusal] = {}
    stale: list[int] = []
    for token_hash, token_id, revoked_at, last_used_at, endpoint_id, code, status in session.execute(query):
        if revoked_at is not None:
            verdicts[token_hash] = TokenRefusal(WS_REFUSED, TokenRevoked.code)
            continue
        if last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION:
            stale.append(token_id)
        if EndpointStatus(status) == EndpointStatus.disabled:
            verdicts[token_hash] = TokenRefusal(WS_REFUSED, EndpointDisabled.code)
        else:
            verdicts[token_hash] = TokenOwner(endpoint_id, code)
    if stale:
        session.execute(update(DeviceToken).where(col(DeviceToken.id).in_(stale)).values(last_used_at=now))
    unknown = TokenRefusal(WS_UNKNOWN_TOKEN, Unauthorized.code)
    return {token_hash: verdicts.get(token_hash, unknown) for token_hash in token_hashes}


_bearer = HTTPBearer(auto_error=False, scheme_name="DeviceToken", description="终端令牌 bcd_…")


def device_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The bearer token of a device request (not yet checked)."""
    if credentials is None:
        raise Unauthorized("缺少终端令牌：请求头须带 Authorization: Bearer bcd_…")
    return credentials.credentials


DeviceTokenDep = Annotated[str, Depends(device_token)]


def get_device(session: SessionDep, token: DeviceTokenDep) -> Endpoint:
    """The token's endpoint. The transaction ends here: FastAPI runs the route in another worker
    thread, and a connection held while waiting for one can deadlock the pool under a burst."""
    endpoint = authenticate_token(session, token)
    session.commit()
    return endpoint


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
