"""Play-event batches: idempotent, bulk, one bad event rejects only itself; bulk token provisioning."""

from __future__ import annotations

import csv
import stat
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from broadcast.auth.models import AuditEntry, DeviceToken
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.dispatch import cli
from broadcast.dispatch.envelope import format_time
from broadcast.dispatch.models import PlayEvent, PlayEventType
from broadcast.regions.models import EndpointStatus
from broadcast.scheduling.models import RundownSlot
from tests.builders import City
from tests.dispatch.conftest import Device, make_campaign, make_revision, make_slot

runner = CliRunner()
# Mounted as broadcast/cli.py mounts it: a one-command Typer invoked alone would hide the command name.
root = typer.Typer()
root.add_typer(cli.devices_app, name="devices")


def event(slot: RundownSlot | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": "started",
        "at": format_time(utc_now()),
        "slot_id": slot.id if slot else None,
        "program_sha256": "a" * 64,
        "position_ms": 0,
        "reason": None,
        **fields,
    }


@pytest.fixture
def slots(session: Session, devices: list[Device]) -> tuple[RundownSlot, RundownSlot]:
    """A slot of the first device and one of the second."""
    campaign = make_campaign(session, make_revision(session))
    starts_at = utc_now() - timedelta(minutes=1)
    made = tuple(
        make_slot(session, endpoint=d.endpoint, campaign=campaign, starts_at=starts_at) for d in devices
    )
    session.commit()
    return made  # type: ignore[return-value]


def _stored(session: Session) -> int:
    return session.exec(select(func.count()).select_from(PlayEvent)).one()


def test_a_retried_batch_is_stored_once(
    client: TestClient, session: Session, devices: list[Device], slots: tuple[RundownSlot, RundownSlot]
) -> None:
    mine = slots[0]
    batch = [
        event(mine),
        event(mine, type="completed", position_ms=5000),
        event(None, type="failed", reason="下载失败", at="2026-10-01T08:00:00+08:00"),
    ]
    first = client.post("/device/v1/events", json={"events": batch}, headers=devices[0].headers)
    assert first.status_code == 200
    assert first.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    again = client.post("/device/v1/events", json={"events": batch}, headers=devices[0].headers)
    assert again.json() == {"accepted": 0, "duplicates": 3, "rejected": []}
    assert _stored(session) == 3
    failed = session.exec(select(PlayEvent).where(PlayEvent.type == PlayEventType.failed)).one()
    assert failed.endpoint_id == devices[0].endpoint.id
    assert failed.reason == "下载失败"
    assert format_time(failed.occurred_at) == "2026-10-01T00:00:00.000Z"
    # Another endpoint may use the same ids: uniqueness is per endpoint.
    same_ids = [event(None, id=e["id"]) for e in batch]
    other = client.post("/device/v1/events", json={"events": same_ids}, headers=devices[1].headers)
    assert other.json()["accepted"] == 3


def test_one_bad_event_rejects_only_itself(
    client: TestClient, session: Session, devices: list[Device], slots: tuple[RundownSlot, RundownSlot]
) -> None:
    mine, theirs = slots
    good = event(mine)
    batch: list[Any] = [
        good,
        event(mine, type="exploded"),
        event(theirs),
        event(None, slot_id=999_999),
        event(mine, at=format_time(utc_now() + timedelta(minutes=10))),
        event(mine, at="2026-10-01T08:00:00"),
        event(mine, position_ms=-1),
        event(mine, volume=3),
        {"id": "x" * 65, "type": "started", "at": format_time(utc_now())},
        "not an object",
        {**good},
        event(mine, at=format_time(utc_now() + timedelta(minutes=4))),
        event(mine, at=format_time(utc_now() - timedelta(days=14 * 31))),
    ]
    answer = client.post("/device/v1/events", json={"events": batch}, headers=devices[0].headers)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["duplicates"]) == (2, 1)
    codes = [(r["index"], r["code"]) for r in body["rejected"]]
    assert codes == [
        (1, "bad_type"),
        (2, "foreign_slot"),
        (3, "unknown_slot"),
        (4, "future_time"),
        (5, "invalid"),
        (6, "invalid"),
        (7, "invalid"),
        (8, "invalid"),
        (9, "invalid"),
        (12, "too_old"),
    ]
    ids = {r["index"]: r["id"] for r in body["rejected"]}
    assert ids[2] == batch[2]["id"]
    assert ids[8] == "x" * 64
    assert ids[9] is None
    assert all(r["message"] for r in body["rejected"])
    assert _stored(session) == 2
    assert session.exec(select(PlayEvent.slot_id).where(col(PlayEvent.slot_id) == theirs.id)).first() is None


def test_batch_size_limits(client: TestClient, devices: list[Device]) -> None:
    headers = devices[0].headers
    empty = client.post("/device/v1/events", json={"events": []}, headers=headers)
    assert empty.status_code == 422
    too_many = client.post(
        "/device/v1/events", json={"events": [event() for _ in range(501)]}, headers=headers
    )
    assert too_many.status_code == 413
    assert too_many.json()["error"]["code"] == "too_large"
    huge = client.post(
        "/device/v1/events",
        content=b'{"events":[' + b'"x",' * 300_000 + b'"x"]}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert client.post("/device/v1/events", content=b"{", headers=headers).status_code == 422
    assert (
        client.post("/device/v1/events", json={"events": [event()], "x": 1}, headers=headers).status_code
        == 422
    )


def test_a_full_batch_goes_in_at_once(client: TestClient, session: Session, devices: list[Device]) -> None:
    batch = [event(None) for _ in range(500)]
    answer = client.post("/device/v1/events", json={"events": batch}, headers=devices[0].headers)
    assert answer.json() == {"accepted": 500, "duplicates": 0, "rejected": []}
    assert _stored(session) == 500


def test_provision_tokens_for_a_village_or_everyone(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    settings: Settings,
    session: Session,
    city: City,
    client: TestClient,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli, "make_engine", lambda _url: engine)
    city.endpoints[-1].status = EndpointStatus.disabled
    session.add(city.endpoints[-1])
    session.commit()
    out = tmp_path / "tokens.csv"
    village = runner.invoke(
        root, ["devices", "provision", "--village", city.villages[0].code, "--out", str(out)]
    )
    assert village.exit_code == 0, village.output
    first = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [row["code"] for row in first] == sorted(e.code for e in city.endpoints[:3])
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    everyone = runner.invoke(root, ["devices", "provision", "--all", "--out", str(out)])
    assert everyone.exit_code == 0, everyone.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == len(city.endpoints) - 1
    assert (
        client.get("/device/v1/rundown", headers={"Authorization": f"Bearer {rows[0]['token']}"}).status_code
        == 200
    )
    stale = client.get("/device/v1/rundown", headers={"Authorization": f"Bearer {first[0]['token']}"})
    assert stale.json()["error"]["code"] == "token_revoked"
    active = select(func.count()).select_from(DeviceToken).where(col(DeviceToken.revoked_at).is_(None))
    assert session.exec(active).one() == len(rows)
    entries = session.exec(select(AuditEntry).where(AuditEntry.action == "device_token.provision")).all()
    assert [(e.after or {}).get("issued") for e in entries] == [3, 11]
    assert [(e.after or {}).get("revoked") for e in entries] == [0, 3]


def test_provision_needs_exactly_one_scope(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, settings: Settings, tmp_path: Path, city: City
) -> None:
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli, "make_engine", lambda _url: engine)
    out = str(tmp_path / "t.csv")
    assert runner.invoke(root, ["devices", "provision", "--out", out]).exit_code == 2
    both = ["devices", "provision", "--all", "--village", city.villages[0].code, "--out", out]
    assert runner.invoke(root, both).exit_code == 2
    unknown = runner.invoke(root, ["devices", "provision", "--village", "000000000000", "--out", out])
    assert unknown.exit_code == 1
    assert "不存在" in unknown.output
    assert not Path(out).exists()
