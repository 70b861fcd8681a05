"""The record of imported CAP messages: one row per (sender, identifier), so a message acts once
whoever imports it, however often and however simultaneously; references may name any message
of a chain; the sender we write comes from the settings; migration 0008 backfills the record."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from broadcast import migrations
from broadcast.alerts import cap, cap_io
from broadcast.alerts.models import Alert, AlertCategory, AlertSource, CapAction, CapMessageRecord
from broadcast.auth.audit import Actor
from broadcast.auth.models import AuditEntry, Role, User
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.content.models import AudioBlob
from broadcast.content.store import get_store
from broadcast.db import make_engine, transaction
from tests import builders
from tests.alerts.conftest import outbox
from tests.alerts.test_cap_routes import (
    UNKNOWN_TOWN,
    UPSTREAM,
    Samples,
    confirm,
    count,
    exported,
    imported,
    post_cap,
    sample,
    samples,
)
from tests.conftest import _create_pg_database

__all__ = ["imported", "samples"]  # the route tests' fixtures: the bureau's flood alert, imported

OTHER_SENDER = "yjgb.shifan.gov.cn"


def _records(session: Session) -> list[CapMessageRecord]:
    session.expire_all()
    return list(session.exec(select(CapMessageRecord).order_by(col(CapMessageRecord.id))).all())


def _sent_of(xml: str) -> str:
    found = re.search(r"<sent>(.*)</sent>", xml)
    assert found is not None
    return found[1]


def _follow_up(xml: str, identifier: str, references: list[tuple[str, str]]) -> str:
    """The sample with a new identifier that references only the given (identifier, sent)."""
    listed = " ".join(f"{UPSTREAM},{ident},{sent}" for ident, sent in references)
    xml = re.sub(r"<identifier>.*</identifier>", f"<identifier>{identifier}</identifier>", xml)
    return re.sub(r"<references>.*</references>", f"<references>{listed}</references>", xml)


# --- the record ----------------------------------------------------------------------------------


def test_every_imported_message_is_recorded_once_with_its_upstream_header(
    client: TestClient,
    session: Session,
    auth: dict[str, dict[str, str]],
    officers: dict[str, User],
    imported: dict[str, Any],
    samples: Samples,
) -> None:
    confirm(client, auth, imported["alert"])
    assert post_cap(client, auth["duty2"], samples("flood_update.xml")).status_code == 200
    assert post_cap(client, auth["duty"], samples("flood_cancel.xml")).status_code == 200
    alert_id = imported["alert"]["id"]
    rows = _records(session)
    assert [(r.identifier, r.msg_type, r.action, r.alert_id) for r in rows] == [
        ("SFSWJ-2024-0702-001", "Alert", CapAction.draft, alert_id),
        ("SFSWJ-2024-0702-002", "Update", CapAction.update, alert_id),
        ("SFSWJ-2024-0702-003", "Cancel", CapAction.cancel, alert_id),
    ]
    first = rows[0]
    original = cap.parse_cap(samples("flood_alert.xml").encode())
    assert (first.sender, first.status) == (UPSTREAM, "Actual")
    assert first.sent_at == original.sent
    assert first.sent_at.utcoffset() == timedelta(0)
    assert first.unmatched_codes == [UNKNOWN_TOWN]
    assert [r.imported_by for r in rows] == [officers["duty"].id, officers["duty2"].id, officers["duty"].id]


def test_the_export_reads_the_upstream_sent_time_from_the_record_not_the_audit_log(
    client: TestClient,
    session: Session,
    auth: dict[str, dict[str, str]],
    imported: dict[str, Any],
    samples: Samples,
) -> None:
    session.execute(delete(AuditEntry))
    session.commit()
    [upstream] = exported(client, auth["duty"], imported["alert"]["id"]).references
    assert upstream.identifier == "SFSWJ-2024-0702-001"
    assert upstream.sent == cap.parse_cap(samples("flood_alert.xml").encode()).sent


def test_a_repeated_update_makes_no_revision_even_after_the_officer_changed_the_alert(
    client: TestClient,
    session: Session,
    auth: dict[str, dict[str, str]],
    imported: dict[str, Any],
    samples: Samples,
) -> None:
    alert_id = imported["alert"]["id"]
    confirm(client, auth, imported["alert"])
    first = post_cap(client, auth["duty"], samples("flood_update.xml"))
    assert first.json()["alert"]["revision"] == 2
    by_hand = client.post(f"/api/v1/alerts/{alert_id}/update", json={"repeat": 3}, headers=auth["duty"])
    assert by_hand.json()["revision"] == 3
    sent_before = len(outbox(session))
    again = post_cap(client, auth["duty2"], samples("flood_update.xml"))
    assert again.status_code == 200, again.text
    assert (again.json()["action"], again.json()["alert"]["revision"]) == ("update", 3)
    assert again.json()["notes"][:-1] == first.json()["notes"]
    assert f"对应预警 {alert_id}：本次未重复处理" in again.json()["notes"][-1]
    assert len(outbox(session)) == sent_before


# --- references that name an update --------------------------------------------------------------


def test_an_update_and_a_cancel_referencing_only_the_previous_update_find_the_alert(
    client: TestClient,
    session: Session,
    auth: dict[str, dict[str, str]],
    imported: dict[str, Any],
    samples: Samples,
) -> None:
    alert_id = imported["alert"]["id"]
    confirm(client, auth, imported["alert"])
    first_update = samples("flood_update.xml")
    assert post_cap(client, auth["duty"], first_update).json()["alert"]["revision"] == 2
    second_update = _follow_up(
        first_update, "SFSWJ-2024-0702-004", [("SFSWJ-2024-0702-002", _sent_of(first_update))]
    ).replace("洪峰预计08时前后", "洪峰预计09时前后")
    updated = post_cap(client, auth["duty"], second_update)
    assert updated.status_code == 200, updated.text
    assert (updated.json()["action"], updated.json()["alert"]["id"]) == ("update", alert_id)
    assert updated.json()["alert"]["revision"] == 3
    assert "09时前后" in updated.json()["alert"]["text"]

    cancel = _follow_up(
        samples("flood_cancel.xml"), "SFSWJ-2024-0702-005", [("SFSWJ-2024-0702-004", _sent_of(second_update))]
    )
    cancelled = post_cap(client, auth["duty"], cancel)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["alert"]["id"], cancelled.json()["alert"]["status"]) == (alert_id, "cancelled")
    assert [r.alert_id for r in _records(session)] == [alert_id] * 4
    assert count(session, Alert) == 1


def test_a_reference_to_an_update_we_never_received_is_404_naming_it(
    client: TestClient,
    session: Session,
    imported: dict[str, Any],
    auth: dict[str, dict[str, str]],
    samples: Samples,
) -> None:
    update = _follow_up(
        samples("flood_update.xml"),
        "SFSWJ-2024-0702-004",
        [("SFSWJ-2024-0702-002", "2024-07-02T04:05:00+08:00")],
    )
    response = post_cap(client, auth["duty"], update)
    assert response.status_code == 404
    assert f"{UPSTREAM},SFSWJ-2024-0702-002" in response.json()["error"]["message"]
    assert [r.identifier for r in _records(session)] == ["SFSWJ-2024-0702-001"]


# --- the same message at the same instant (PostgreSQL: SQLite serialises its writers) ------------


def _at_once(
    engine: Engine, users: list[User], xml: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> list[cap_io.Imported]:
    """Two imports in two sessions, both past the read check before either writes, so only the
    unique key can keep them apart; each commits like a request."""
    barrier = threading.Barrier(len(users), timeout=60)
    look = cap_io._known

    def look_then_wait(session: Session, sender: str, identifier: str) -> CapMessageRecord | None:
        found = look(session, sender, identifier)
        barrier.wait()
        return found

    def run(user: User) -> cap_io.Imported:
        with Session(engine, expire_on_commit=False) as session:
            done = cap_io.import_cap(
                session,
                data=xml.encode(),
                user=user,
                actor=Actor(user_id=user.id, name=user.username),
                store=get_store(settings),
                settings=settings,
                now=utc_now(),
            )
            session.commit()
            return done

    with monkeypatch.context() as patch, ThreadPoolExecutor(max_workers=len(users)) as pool:
        patch.setattr(cap_io, "_known", look_then_wait)
        return list(pool.map(run, users))


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_two_officers_importing_the_same_alert_at_once_get_one_draft(
    engine: Engine,
    session: Session,
    city: builders.City,
    officers: dict[str, User],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    xml = sample("flood_alert.xml", city)
    results = _at_once(engine, [officers["duty"], officers["duty2"]], xml, settings, monkeypatch)
    assert sorted(done.created for done in results) == [False, True]
    assert results[0].alert.id == results[1].alert.id
    assert [done.action for done in results] == [CapAction.draft, CapAction.draft]
    assert (count(session, Alert), count(session, CapMessageRecord)) == (1, 1)
    assert _records(session)[0].alert_id == results[0].alert.id


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_the_same_update_imported_twice_at_once_makes_one_revision(
    engine: Engine,
    client: TestClient,
    session: Session,
    auth: dict[str, dict[str, str]],
    officers: dict[str, User],
    imported: dict[str, Any],
    samples: Samples,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    confirm(client, auth, imported["alert"])
    users = [officers["duty"], officers["duty2"]]
    results = _at_once(engine, users, samples("flood_update.xml"), settings, monkeypatch)
    assert [done.action for done in results] == [CapAction.update, CapAction.update]
    session.expire_all()
    assert session.get_one(Alert, imported["alert"]["id"]).revision == 2
    assert [m["alert"]["type"] for m in outbox(session)] == ["alert", "alert"]
    assert count(session, CapMessageRecord) == 2


# --- our sender ----------------------------------------------------------------------------------


@pytest.fixture
def other_sender(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    from broadcast.app import create_app

    app = create_app(
        settings.model_copy(update={"cap_sender": OTHER_SENDER}), engine=engine, upgrade_db=False
    )
    with TestClient(app) as client:
        yield client


def test_exports_carry_the_configured_sender(
    other_sender: TestClient, auth: dict[str, dict[str, str]], imported: dict[str, Any]
) -> None:
    message = exported(other_sender, auth["duty"], imported["alert"]["id"])
    assert message.sender == OTHER_SENDER
    assert message.identifier == f"{OTHER_SENDER}.alert.{imported['alert']['id']}.r1"


def test_the_sender_is_read_from_the_environment_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BROADCAST_CAP_SENDER", raising=False)
    assert Settings().cap_sender == "cloud-broadcast.local"
    monkeypatch.setenv("BROADCAST_CAP_SENDER", OTHER_SENDER)
    assert Settings().cap_sender == OTHER_SENDER
    for bad in ("", "our city", "a,b", "a<b", "a&b"):
        with pytest.raises(ValidationError, match="cap_sender"):
            Settings(cap_sender=bad)


# --- migration 0008 ------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_engine(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Engine]:
    """An empty database of its own, to be migrated step by step."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'steps.db'}")
        yield engine
        engine.dispose()
        return
    url, drop = _create_pg_database()
    engine = make_engine(url)
    yield engine
    engine.dispose()
    drop()


def _old_alert(session: Session, user: User, identifier: str | None, *, drill: bool = False) -> Alert:
    alert = Alert(
        request_key=uuid.uuid4().hex,
        title="山洪橙色预警",
        text="沿河群众请立即向高处转移。",
        level=2,
        category=AlertCategory.flood,
        drill=drill,
        selector={"all": True},
        valid_until=utc_now() + timedelta(hours=2),
        program_sha256="0" * 64,
        program_duration_ms=1000,
        source=AlertSource.cap if identifier else AlertSource.console,
        cap_sender=UPSTREAM if identifier else None,
        cap_identifier=identifier,
        created_by=user.id,
    )
    session.add(alert)
    session.flush()
    return alert


def _import_entry(user: User, alert: Alert, identifier: str, msg_type: str, sent: datetime) -> AuditEntry:
    """What the import wrote to the audit log before 0008."""
    header = {"sender": UPSTREAM, "identifier": identifier, "sent": sent.isoformat()}
    after = {**header, "msg_type": msg_type, "status": "Actual", "unmatched_codes": [UNKNOWN_TOWN]}
    return AuditEntry(
        actor_id=user.id,
        actor_name=user.username,
        action="alert.cap_import",
        entity_type="alert",
        entity_id=str(alert.id),
        after=after,
    )


def test_migration_0008_records_the_messages_imported_before_it(blank_engine: Engine) -> None:
    migrations.upgrade(blank_engine, "0007")
    sent = datetime(2024, 7, 2, 2, 13, tzinfo=ZoneInfo("Asia/Shanghai"))
    with transaction(blank_engine) as session:
        duty, duty2 = (builders.make_user(session, role=Role.duty_officer) for _ in range(2))
        session.add(
            AudioBlob(
                sha256="0" * 64, size_bytes=1, duration_ms=1000, sample_rate=48000, channels=1, codec="mp3"
            )
        )
        session.flush()
        first = _old_alert(session, duty, "SFSWJ-1")
        twin = _old_alert(session, duty2, "SFSWJ-1")  # the same message, by a second officer
        quiet = _old_alert(session, duty2, "SFSWJ-9", drill=True)  # no audit entry
        _old_alert(session, duty, None)  # drafted on the desk
        session.add(_import_entry(duty, first, "SFSWJ-1", "Alert", sent))
        session.add(_import_entry(duty2, twin, "SFSWJ-1", "Alert", sent))
        session.add(_import_entry(duty2, first, "SFSWJ-2", "Update", sent + timedelta(hours=1)))
    migrations.upgrade(blank_engine)
    with Session(blank_engine) as session:
        rows = {row.identifier: row for row in _records(session)}
    assert sorted(rows) == ["SFSWJ-1", "SFSWJ-2", "SFSWJ-9"]
    original, update, backfilled = rows["SFSWJ-1"], rows["SFSWJ-2"], rows["SFSWJ-9"]
    assert (original.alert_id, original.action, original.msg_type) == (first.id, CapAction.draft, "Alert")
    assert (original.sent_at, original.imported_by, original.unmatched_codes) == (
        sent,
        duty.id,
        [UNKNOWN_TOWN],
    )
    assert (update.alert_id, update.action, update.imported_by) == (first.id, CapAction.update, duty2.id)
    assert update.sent_at == sent + timedelta(hours=1)
    assert (backfilled.alert_id, backfilled.action, backfilled.status) == (
        quiet.id,
        CapAction.draft,
        "Exercise",
    )
    assert backfilled.sent_at == backfilled.imported_at == quiet.created_at
    assert backfilled.imported_by == duty2.id
    command.downgrade(migrations.alembic_config(blank_engine), "0007")
    assert migrations.current_heads(blank_engine) == {"0007"}
