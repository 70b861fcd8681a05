"""``broadcast schedules check``: every kind of problem is found, with its file, line and field."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from broadcast.config import Settings
from broadcast.demo.city import build_demo_city
from broadcast.scheduling import files_cli
from broadcast.scheduling.files import Problem, SeasonSpec, load_file, place_day, resolve_season
from broadcast.scheduling.files_sync import SCHEDULES_DIR, check_folder
from tests.scheduling.files_helpers import campaign, tagged_city, write

TODAY = date(2026, 11, 28)


def _line(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


def _only(problems: list[Problem], name: str) -> Problem:
    found = [p for p in problems if Path(p.file).name == name]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def city(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session:
        tagged_city(session)


def test_a_valid_file_passes(tmp_path: Path, city: None, sqlite_engine: Engine, settings: Settings) -> None:
    write(tmp_path, campaign())
    result = check_folder(sqlite_engine, tmp_path, today=TODAY, settings=settings)
    assert result.problems == []
    assert [diff.key for diff in result.diffs] == ["river-watch"]


def test_yaml_syntax_error_has_its_line(
    tmp_path: Path, city: None, sqlite_engine: Engine, settings: Settings
) -> None:
    (tmp_path / "broken.yaml").write_text(
        "key: broken\nname: 坏文件\ntarget: [river\nstatus: draft\n", encoding="utf-8"
    )
    problem = _only(
        check_folder(sqlite_engine, tmp_path, today=TODAY, settings=settings).problems, "broken.yaml"
    )
    assert problem.line is not None
    assert problem.line >= 3
    assert "YAML 语法错误" in problem.message


def test_duplicate_key_is_reported(
    tmp_path: Path, city: None, sqlite_engine: Engine, settings: Settings
) -> None:
    path = write(tmp_path, campaign("dup"))
    path.write_text(path.read_text(encoding="utf-8") + "priority: 7\n", encoding="utf-8")
    problem = _only(
        check_folder(sqlite_engine, tmp_path, today=TODAY, settings=settings).problems, "dup.yaml"
    )
    assert (problem.field, problem.line) == ("priority", _line(path, "priority: 7"))


@pytest.mark.parametrize(
    ("overrides", "needle", "field", "message"),
    [
        ({"priorty": 5}, "priorty:", "priorty", "不认识的字段"),
        ({"max_plays_per_day": "many"}, "max_plays_per_day:", "max_plays_per_day", "integer"),
        ({"target": {"tags": ["volcano"]}}, "target:", "target", "volcano"),
        ({"target": {"towns": ["999999999"]}}, "target:", "target", "999999999"),
        (
            {"recurrence": {"dtstart": "06:40", "rrule": "FREQ=DAILY;BYHOUR=25"}},
            "recurrence:",
            "recurrence",
            "RRULE",
        ),
        ({"recurrence": {"preset": "daily", "times": ["09:00"]}}, "recurrence:", "recurrence", "09:00"),
        ({"season": {"first": "10-01", "last": "2027-04-30"}}, "season:", "season", "MM-DD"),
        ({"exception_dates": ["07-01"]}, "07-01", "exception_dates[0]", "不在季节"),
        ({"field_values": {}}, "field_values:", "field_values", "hotline"),
    ],
)
def test_each_problem_names_its_field_and_line(
    tmp_path: Path,
    city: None,
    sqlite_engine: Engine,
    settings: Settings,
    overrides: dict[str, object],
    needle: str,
    field: str,
    message: str,
) -> None:
    path = write(tmp_path, campaign("bad", **overrides))
    problem = _only(
        check_folder(sqlite_engine, tmp_path, today=TODAY, settings=settings).problems, "bad.yaml"
    )
    assert problem.field == field
    assert problem.line == _line(path, needle)
    assert message in problem.message


def test_playlist_references_are_checked(
    tmp_path: Path, city: None, sqlite_engine: Engine, settings: Settings
) -> None:
    document = campaign("refs")
    document["content"]["playlist"]["items"] = [{"bulletin": "nope"}, {"chime": "gong"}, {"bulletin": "main"}]
    path = write(tmp_path, document)
    problems = check_folder(sqlite_engine, tmp_path, today=TODAY, settings=settings).problems
    by_field = {p.field: p for p in problems}
    assert by_field["content.playlist.items[0].bulletin"].line == _line(path, "bulletin: nope")
    assert "nope" in by_field["content.playlist.items[0].bulletin"].message
    assert by_field["content.playlist.items[1].chime"].line == _line(path, "chime: gong")


def test_key_must_match_file_name_and_playlists_are_not_shared(
    tmp_path: Path, city: None, sqlite_engine: Engine, settings: Settings
) -> None:
    write(tmp_path, campaign("other"), name="renamed")
    shared = campaign("second")
    shared["content"]["playlist"]["name"] = "first 节目单"
    write(tmp_path, campaign("first"))
    write(tmp_path, shared)
    problems = check_folder(sqlite_engine, tmp_path, today=TODAY, settings=settings).problems
    assert _only(problems, "renamed.yaml").field == "key"
    assert _only(problems, "second.yaml").field == "content.playlist.name"


def test_check_command_lists_every_problem_and_fails(
    tmp_path: Path, city: None, sqlite_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, campaign("one", priorty=1))
    write(tmp_path, campaign("two", target={"tags": ["volcano"]}))
    monkeypatch.setattr(files_cli, "get_settings", lambda: settings)
    monkeypatch.setattr(files_cli, "make_engine", lambda _: sqlite_engine)
    result = CliRunner().invoke(files_cli.schedules_app, ["check", str(tmp_path), "--on", "2026-11-28"])
    assert result.exit_code == 1
    output = result.output.replace("\n", "")  # the terminal wraps long temporary paths
    assert "one.yaml" in output
    assert "two.yaml" in output
    assert "共 2 个问题" in output


def test_the_demo_schedules_pass_check(sqlite_engine: Engine, settings: Settings) -> None:
    with Session(sqlite_engine) as session:
        build_demo_city(session)
        session.commit()
    for on in (TODAY, date(2027, 3, 1), date(2027, 8, 15)):
        result = check_folder(sqlite_engine, SCHEDULES_DIR, today=on, settings=settings)
        assert result.problems == [], "\n".join(map(str, result.problems))
        assert len(result.diffs) >= 12


def test_loader_keeps_times_days_and_codes_as_text(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    write(tmp_path, campaign("plain"))
    text = path.read_text(encoding="utf-8").replace("'06:40'", "06:40").replace("'18:20'", "12:00")
    path.write_text(text.replace("tags:\n  - river", "towns:\n  - 430181001"), encoding="utf-8")
    spec = load_file(path).spec
    assert spec.recurrence.times == ["06:40", "12:00"]
    assert spec.target.towns == ["430181001"]


@pytest.mark.parametrize(
    ("first", "last", "today", "expected"),
    [
        ("10-01", "04-30", date(2026, 11, 28), (date(2026, 10, 1), date(2027, 4, 30))),
        ("10-01", "04-30", date(2027, 4, 30), (date(2026, 10, 1), date(2027, 4, 30))),
        ("10-01", "04-30", date(2027, 5, 1), (date(2027, 10, 1), date(2028, 4, 30))),
        ("05-09", "05-15", date(2026, 11, 28), (date(2027, 5, 9), date(2027, 5, 15))),
        ("11-01", "11-30", date(2026, 11, 28), (date(2026, 11, 1), date(2026, 11, 30))),
        ("2026-06-01", "2026-06-30", date(2030, 1, 1), (date(2026, 6, 1), date(2026, 6, 30))),
    ],
)
def test_yearly_seasons_resolve_against_the_reference_date(
    first: str, last: str, today: date, expected: tuple[date, date]
) -> None:
    assert resolve_season(SeasonSpec(first=first, last=last), today=today) == expected


def test_month_days_are_placed_inside_the_season() -> None:
    season = (date(2026, 12, 1), date(2027, 2, 28))
    assert place_day("01-01", season) == date(2027, 1, 1)
    assert place_day("12-24", season) == date(2026, 12, 24)
    with pytest.raises(ValueError, match="不在季节"):
        place_day("06-01", season)
