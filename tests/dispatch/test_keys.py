"""Signing keys: made once, encrypted at rest, rotated with the old key still published."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from broadcast.auth.audit import CLI
from broadcast.auth.models import AuditEntry, Role, User
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.db import transaction
from broadcast.dispatch import cli, keys, signing
from broadcast.dispatch.models import SigningKey

runner = CliRunner()


def test_first_use_makes_one_active_key(session: Session, settings: Settings) -> None:
    key = keys.ensure_active_key(session, settings=settings)
    assert keys.ensure_active_key(session, settings=settings).kid == key.kid
    assert key.active
    assert key.retired_at is None
    assert len(keys.public_key_bytes(key)) == 32
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "signing_key.create")).one()
    assert entry.after is not None
    assert "private_key_encrypted" not in entry.after


def test_concurrent_first_use_still_makes_one_key(engine: Engine, settings: Settings) -> None:
    made: list[str] = []

    def ensure() -> None:
        with transaction(engine) as session:
            made.append(keys.ensure_active_key(session, settings=settings).kid)

    threads = [threading.Thread(target=ensure) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 1
    with Session(engine) as session:
        assert len(keys.list_keys(session)) == 1


def test_private_keys_are_encrypted_and_bound_to_their_kid(settings: Settings) -> None:
    sealed = keys.encrypt_private_key(b"\x01" * 32, secret=settings.secret_key, kid="k1")
    assert sealed.startswith("v1.")
    assert len(sealed) < 255
    assert keys.decrypt_private_key(sealed, secret=settings.secret_key, kid="k1") == b"\x01" * 32
    for secret, kid in ((settings.secret_key, "k2"), ("another-secret", "k1")):
        with pytest.raises(keys.KeyUnavailable):
            keys.decrypt_private_key(sealed, secret=secret, kid=kid)
    with pytest.raises(keys.KeyUnavailable):
        keys.decrypt_private_key("v0.AAAA", secret=settings.secret_key, kid="k1")


def test_rotation_keeps_the_old_key_published_until_its_signatures_expire(
    session: Session, settings: Settings
) -> None:
    old = keys.ensure_active_key(session, settings=settings)
    signed_before = signing.sign(session, {"type": "rundown_changed"}, settings=settings)
    new = keys.rotate_key(session, settings=settings, actor=CLI)
    assert (new.active, old.active) == (True, False)
    assert old.retired_at is not None
    now = utc_now()
    published = keys.published_keys(session, settings=settings, now=now)
    assert [key.kid for key in published] == [new.kid, old.kid]
    assert signing.verify(signed_before, published, now=now)
    assert signing.sign(session, {"type": "volume"}, settings=settings)["kid"] == new.kid
    later = old.retired_at + timedelta(seconds=settings.signature_ttl_s + 1)
    assert [key.kid for key in keys.published_keys(session, settings=settings, now=later)] == [new.kid]
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "signing_key.rotate")).one()
    assert entry.actor_name == "cli"
    assert entry.after is not None
    assert entry.after["reason"] == "manual"
    assert "private_key_encrypted" not in str(entry.before)


def test_changed_secret_rotates_to_a_fresh_key(session: Session, settings: Settings) -> None:
    old = keys.ensure_active_key(session, settings=settings)
    moved = settings.model_copy(update={"secret_key": "a-completely-different-secret-key-0123456789"})
    envelope = signing.sign(session, {"type": "volume"}, settings=moved)
    assert envelope["kid"] != old.kid
    rows = session.exec(select(SigningKey).order_by(col(SigningKey.id))).all()
    assert [(row.kid, row.active) for row in rows] == [(old.kid, False), (envelope["kid"], True)]
    assert signing.verify(
        envelope, keys.published_keys(session, settings=moved, now=utc_now()), now=utc_now()
    )
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "signing_key.rotate")).one()
    assert entry.actor_name == "system"
    assert entry.after is not None
    assert entry.after["reason"] == "secret_key_changed"


def test_device_keys_endpoint_needs_no_auth(client: TestClient) -> None:
    first = client.get("/device/v1/keys")
    assert first.status_code == 200
    [key] = first.json()["keys"]
    assert key["alg"] == "Ed25519"
    assert key["active"] is True
    assert key["retired_at"] is None
    assert key["created_at"].endswith("Z")
    assert set(key) == {"kid", "alg", "public_key", "active", "created_at", "retired_at"}


def test_admin_lists_and_rotates(
    client: TestClient, session: Session, users: dict[Role, User], headers: dict[Role, dict[str, str]]
) -> None:
    admin = headers[Role.admin]
    assert client.get("/api/v1/signing-keys", headers=admin).json() == []
    first = client.post("/api/v1/signing-keys/rotate", headers=admin)
    second = client.post("/api/v1/signing-keys/rotate", headers=admin)
    assert first.status_code == second.status_code == 201
    listed = client.get("/api/v1/signing-keys", headers=admin).json()
    assert [(k["kid"], k["active"], k["published"]) for k in listed] == [
        (second.json()["kid"], True, True),
        (first.json()["kid"], False, True),
    ]
    assert all("private" not in field for field in listed[0])
    published = client.get("/device/v1/keys").json()["keys"]
    assert [k["kid"] for k in published] == [k["kid"] for k in listed]
    entries = session.exec(select(AuditEntry).where(AuditEntry.action == "signing_key.rotate")).all()
    assert [e.actor_name for e in entries] == [users[Role.admin].username] * 2


@pytest.mark.parametrize("role", [Role.propagandist, Role.duty_officer, Role.village_admin])
def test_keys_admin_api_is_admin_only(
    client: TestClient, headers: dict[Role, dict[str, str]], role: Role
) -> None:
    assert client.get("/api/v1/signing-keys", headers=headers[role]).status_code == 403
    assert client.post("/api/v1/signing-keys/rotate", headers=headers[role]).status_code == 403
    assert client.post("/api/v1/signing-keys/rotate").status_code == 401


def test_cli_rotate_and_list(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, settings: Settings, session: Session
) -> None:
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli, "make_engine", lambda _url: engine)
    for _ in range(2):
        rotated = runner.invoke(cli.keys_app, ["rotate"])
        assert rotated.exit_code == 0, rotated.output
        assert "已启用" in rotated.output
    listed = runner.invoke(cli.keys_app, ["list"])
    assert listed.exit_code == 0, listed.output
    assert "签名中" in listed.output
    assert "已停用，仍发布" in listed.output
    assert len(keys.list_keys(session)) == 2
