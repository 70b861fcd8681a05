from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from broadcast.auth.models import AuditEntry, DeviceToken
from broadcast.errors import Unauthorized
from broadcast.regions.tokens import authenticate_device
from tests.builders import City


def _issue(client: TestClient, admin: dict[str, str], code: str) -> dict[str, object]:
    response = client.post(f"/api/v1/endpoints/{code}/tokens", headers=admin)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_issue_returns_the_secret_once_and_rotates(
    client: TestClient, session: Session, city: City, admin: dict[str, str]
) -> None:
    code = city.endpoints[0].code
    first = _issue(client, admin, code)
    assert str(first["secret"]).startswith(str(first["prefix"]))
    assert first["revoked_token_ids"] == []
    second = _issue(client, admin, code)
    assert second["revoked_token_ids"] == [first["id"]]
    listed = client.get(f"/api/v1/endpoints/{code}/tokens", headers=admin).json()
    assert [t["id"] for t in listed] == [second["id"], first["id"]]
    assert listed[1]["revoked_at"] is not None
    assert listed[0]["revoked_at"] is None
    assert all(set(t) == {"id", "prefix", "created_at", "revoked_at", "last_used_at"} for t in listed)
    entries = session.exec(select(AuditEntry).where(AuditEntry.entity_type == "device_token")).all()
    assert [e.action for e in entries] == ["device_token.issue", "device_token.issue"]
    logged = json.dumps([e.after for e in entries])
    assert str(first["secret"]) not in logged
    assert "token_hash" not in logged


def test_authenticate_device(client: TestClient, session: Session, city: City, admin: dict[str, str]) -> None:
    endpoint = city.endpoints[3]
    old = _issue(client, admin, endpoint.code)
    new = _issue(client, admin, endpoint.code)
    assert authenticate_device(session, secret=str(new["secret"])).code == endpoint.code
    session.commit()
    used = session.get_one(DeviceToken, new["id"])
    assert used.last_used_at is not None
    with pytest.raises(Unauthorized, match=r"已于 .* 吊销"):
        authenticate_device(session, secret=str(old["secret"]))
    with pytest.raises(Unauthorized, match="终端令牌无效"):
        authenticate_device(session, secret="bcd_not-a-real-token")


def test_revoke(client: TestClient, session: Session, city: City, admin: dict[str, str]) -> None:
    code = city.endpoints[1].code
    token = _issue(client, admin, code)
    url = f"/api/v1/endpoints/{code}/tokens/{token['id']}"
    revoked = client.delete(url, headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    again = client.delete(url, headers=admin)
    assert again.status_code == 409
    assert "已于" in again.json()["error"]["message"]
    other = client.delete(f"/api/v1/endpoints/{city.endpoints[2].code}/tokens/{token['id']}", headers=admin)
    assert other.status_code == 404
    with pytest.raises(Unauthorized):
        authenticate_device(session, secret=str(token["secret"]))
    actions = session.exec(select(AuditEntry.action).where(AuditEntry.entity_type == "device_token")).all()
    assert actions == ["device_token.issue", "device_token.revoke"]


def test_tokens_are_admin_only(client: TestClient, city: City, wang: dict[str, str]) -> None:
    code = city.endpoints[0].code  # inside her village, still not hers to manage
    assert client.post(f"/api/v1/endpoints/{code}/tokens", headers=wang).status_code == 403
    assert client.get(f"/api/v1/endpoints/{code}/tokens", headers=wang).status_code == 403
