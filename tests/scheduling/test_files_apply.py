"""``broadcast schedules apply`` and ``export``: create or update by key, diff, idempotence, round trip."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from typer.testing import CliRunner

from broadcast.auth.audit import CLI
from broadcast.auth.models import AuditEntry
from broadcast.config import Settings
from broadcast.content.models import Bulletin
from broadcast.playlists.models import PlaylistRevision
from broadcast.scheduling import files_cli
from broadcast.scheduling.files_apply import Actors
from broadcast.scheduling.files_export import export_folder
from broadcast.scheduling.files_sync import CLI_APPROVER, SyncResult, apply_folder, check_folder
from broadcast.scheduling.models import Campaign, CampaignStatus
from tests.scheduling.files_helpers import campaign, tagged_city, write

TODAY = date(2026, 11, 28)
AUTHOR = Actors(author=CLI)


def _counts(engine: Engine) -> tuple[int, int, int, int]:
    with Session(engine) as session:
        return (
            session.exec(select(func.count()).select_from(AuditEntry)).one(),
            session.exec(select(func.count()).select_from(PlaylistRevision)).one(),
            session.exec(select(func.count()).select_from(Bulletin)).one(),
            session.exec(select(func.count()).select_from(Campaign)).one(),
        )


def _apply(engine: Engine, folder: Path, settings: Settings) -> SyncResult:
    result = apply_folder(engine, folder, actors=AUTHOR, today=TODAY, settings=settings)
    assert result.problems == [], "\n".join(map(str, result.problems))
    return result


def _marks(result: SyncResult) -> dict[str, list[str]]:
    return {diff.key: [change.mark for change in diff.changes] for diff in result.diffs}


@pytest.fixture
def folder(tmp_path: Path, engine: Engine) -> Path:
    with Session(engine) as session:
        tagged_city(session)
    folder = tmp_path / "schedules"
    write(folder, campaign("river-watch"))
    weekly = campaign(
        "gas-weekly",
        target={"all": True, "exclude": {"tags": ["forest"]}},
        season={"first": "12-01", "last": "02-28"},
        recurrence={"dtstart": "18:40", "rrule": "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=18;BYMINUTE=40"},
        exception_dates=["01-01"],
    )
    write(folder, weekly)
    return folder


def test_apply_creates_then_a_second_apply_changes_nothing(
    folder: Path, engine: Engine, settings: Settings
) -> None:
    first = _apply(engine, folder, settings)
    assert _marks(first) == {"gas-weekly": ["+", "+", "+"], "river-watch": ["+", "+", "+"]}
    after_first = _counts(engine)
    second = _apply(engine, folder, settings)
    assert not second.changed
    assert all(mark == "=" for marks in _marks(second).values() for mark in marks)
    assert _counts(engine) == after_first
    with Session(engine) as session:
        stored = session.exec(select(Campaign).where(Campaign.key == "gas-weekly")).one()
        assert (stored.season_start, stored.season_end) == (date(2026, 12, 1), date(2027, 2, 28))
        assert stored.exception_dates == ["2027-01-01"]
        assert stored.status == CampaignStatus.draft


def test_an_edit_shows_old_and_new_and_makes_one_new_revision(
    folder: Path, engine: Engine, settings: Settings
) -> None:
    _apply(engine, folder, settings)
    _, revisions, bulletins, _ = _counts(engine)
    edited = campaign("river-watch", priority=7)
    edited["content"]["bulletins"][0]["text"] = "汛期请远离河道，热线{hotline}。"
    write(folder, edited)
    dry = check_folder(engine, folder, today=TODAY, settings=settings)
    assert _counts(engine)[1] == revisions
    result = _apply(engine, folder, settings)
    assert [c.mark for c in dry.diffs[1].changes] == [c.mark for c in result.diffs[1].changes]
    changes = {change.what: change for change in result.diffs[1].changes}
    assert changes["文字稿"].mark == "~"
    assert ("text", "请不要在河边玩耍，热线{hotline}。", "汛期请远离河道，热线{hotline}。") in changes[
        "文字稿"
    ].fields
    fields = {name: (old, new) for name, old, new in changes["宣传计划"].fields}
    assert fields["优先级"] == ("5", "7")
    assert fields["节目单版本"] == ("第 1 版", "新版本")
    assert _counts(engine)[1:3] == (revisions + 1, bulletins)
    with Session(engine) as session:
        stored = session.exec(select(Campaign).where(Campaign.key == "river-watch")).one()
        revision = session.get_one(PlaylistRevision, stored.revision_id)
        assert (stored.priority, revision.number) == (7, 2)
    assert not _apply(engine, folder, settings).changed


def test_export_round_trips(folder: Path, engine: Engine, settings: Settings, tmp_path: Path) -> None:
    _apply(engine, folder, settings)
    before = _counts(engine)
    with Session(engine) as session:
        paths = export_folder(session, tmp_path / "exported", today=TODAY)
    assert sorted(p.name for p in paths) == ["gas-weekly.yaml", "river-watch.yaml"]
    gas = yaml.safe_load(paths[0].read_text(encoding="utf-8"))
    assert gas["season"] == {"first": "12-01", "last": "02-28"}
    assert gas["recurrence"]["rrule"].startswith("FREQ=WEEKLY")
    river = yaml.safe_load(paths[1].read_text(encoding="utf-8"))
    assert river["recurrence"] == {"preset": "daily", "times": ["06:40", "18:20"]}
    result = _apply(engine, tmp_path / "exported", settings)
    assert not result.changed
    assert _counts(engine) == before


def test_a_problem_in_one_file_writes_nothing(folder: Path, engine: Engine, settings: Settings) -> None:
    write(folder, campaign("broken", target={"tags": ["volcano"]}))
    result = apply_folder(engine, folder, actors=AUTHOR, today=TODAY, settings=settings)
    assert [Path(p.file).name for p in result.problems] == ["broken.yaml"]
    assert _counts(engine) == (0, 0, 0, 0)


def test_apply_command_prints_the_diff(
    folder: Path, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_cli, "get_settings", lambda: settings)
    monkeypatch.setattr(files_cli, "make_engine", lambda _: engine)
    args = ["apply", str(folder), "--on", "2026-11-28"]
    dry = CliRunner().invoke(files_cli.schedules_app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "+ 宣传计划：river-watch" in dry.output
    assert "未写入" in dry.output
    assert _counts(engine)[3] == 0
    CliRunner().invoke(files_cli.schedules_app, args)
    again = CliRunner().invoke(files_cli.schedules_app, args)
    assert again.exit_code == 0, again.output
    assert "0 个有改动" in again.output
    assert "= 宣传计划：river-watch" in again.output


def test_approval_needs_approve_and_is_audited_as_another_actor(
    sqlite_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    with Session(sqlite_engine) as session:
        tagged_city(session)
    document = campaign("approved-one", status="approved")
    document["content"]["playlist"]["items"] = [{"bulletin": "main"}]
    write(tmp_path, document)
    first = apply_folder(sqlite_engine, tmp_path, actors=AUTHOR, today=TODAY, settings=settings)
    assert first.problems == []
    status = next(c for c in first.diffs[0].changes if c.what == "状态")
    assert (status.name, "--approve" in status.note) == ("草稿 → 待审批", True)
    approving = Actors(author=CLI, approver=CLI_APPROVER)
    second = apply_folder(sqlite_engine, tmp_path, actors=approving, today=TODAY, settings=settings)
    assert [c.name for c in second.diffs[0].changes if c.what == "状态"] == ["待审批 → 已批准"]
    with Session(sqlite_engine) as session:
        stored = session.exec(select(Campaign)).one()
        assert stored.status == CampaignStatus.active
        entries = session.exec(select(AuditEntry).where(AuditEntry.entity_type == "campaign")).all()
        assert [(e.action, e.actor_name) for e in entries][-2:] == [
            ("campaign.submit", "cli"),
            ("campaign.approve", "cli --approve"),
        ]
    before = _counts(sqlite_engine)
    assert not apply_folder(sqlite_engine, tmp_path, actors=approving, today=TODAY, settings=settings).changed
    assert _counts(sqlite_engine) == before
