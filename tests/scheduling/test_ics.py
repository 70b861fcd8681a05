"""Calendar feeds: valid iCalendar that expands, with dateutil, to exactly the core's occurrences."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dateutil.rrule import rruleset, rrulestr
from fastapi import FastAPI
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from broadcast.auth.audit import CLI
from broadcast.auth.models import Role, User
from broadcast.config import Settings
from broadcast.regions.models import Village
from broadcast.scheduling.files_apply import Actors
from broadcast.scheduling.files_sync import apply_folder
from broadcast.scheduling.ics import MEDIA_TYPE, CalendarEntry, calendar_of
from broadcast.scheduling.models import Campaign, CampaignStatus
from broadcast.scheduling.presets import daily_at, on_dates
from broadcast.scheduling.recurrence import SHANGHAI, UTC, Recurrence, Season, expand
from tests.scheduling.files_helpers import campaign, write


def _at(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=SHANGHAI)


WINTER = Season(date(2026, 12, 1), date(2027, 2, 28))
RULES = {
    "daily preset with exception days": daily_at(
        ["06:40", "12:10", "18:20"],
        season=Season(date(2026, 10, 1), date(2027, 4, 30)),
        exception_days=frozenset({date(2026, 12, 25), date(2027, 1, 1)}),
    ),
    "weekly rule starting before its season, with EXDATE": Recurrence(
        dtstart=_at("2026-09-01", "18:40"),
        rrule="FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=18;BYMINUTE=40",
        exdates=(_at("2026-12-07", "18:40"), _at("2026-11-30", "18:40")),
        season=WINTER,
        exception_days=frozenset({date(2027, 1, 1), date(2026, 12, 24)}),
    ),
    "COUNT rule cut by its season": Recurrence(
        dtstart=_at("2026-11-20", "07:00"),
        rrule="FREQ=DAILY;COUNT=30",
        season=Season(date(2026, 11, 25), date(2026, 12, 10)),
    ),
    "UNTIL before the end of the season": Recurrence(
        dtstart=_at("2026-12-01", "12:05"),
        rrule="FREQ=DAILY;INTERVAL=2;UNTIL=20261215T000000Z",
        season=WINTER,
    ),
    "dates with RDATEs outside the season": Recurrence(
        dtstart=_at("2026-11-29", "06:45"),
        rdates=(_at("2026-12-02", "06:45"), _at("2026-12-02", "18:15"), _at("2027-03-05", "06:45")),
        season=Season(date(2026, 11, 30), date(2026, 12, 31)),
    ),
    "dates preset": on_dates([date(2026, 12, 2), date(2026, 12, 9)], ["07:05", "18:25"]),
}


def _feed(rule: Recurrence) -> bytes:
    entry = CalendarEntry(
        uid="campaign-test@broadcast.invalid",
        summary="测试计划",
        description="说明",
        rule=rule,
        duration=timedelta(seconds=95),
        status="CONFIRMED",
        sequence=1,
        stamp=datetime(2026, 11, 28, tzinfo=UTC),
    )
    return calendar_of("测试", [entry])


def _dates(prop: object) -> list[datetime]:
    lists = prop if isinstance(prop, list) else [prop]
    return [item.dt for value in lists for item in value.dts]  # type: ignore[attr-defined]


def _expand_ics(body: bytes, lo: datetime, hi: datetime) -> list[datetime]:
    """What a calendar app using dateutil makes of the feed (DTSTART always counts, RFC 5545)."""
    event = Calendar.from_ical(body).walk("VEVENT")[0]
    dtstart = event.decoded("dtstart")
    rules = rruleset()
    if "RRULE" in event:
        rules.rrule(rrulestr(event["RRULE"].to_ical().decode(), dtstart=dtstart))
    rules.rdate(dtstart)
    for at in _dates(event["RDATE"]) if "RDATE" in event else []:
        rules.rdate(at)
    for at in _dates(event["EXDATE"]) if "EXDATE" in event else []:
        rules.exdate(at)
    return sorted(at.astimezone(UTC) for at in rules.between(lo - timedelta(seconds=1), hi) if lo <= at < hi)


@pytest.mark.parametrize("name", list(RULES))
def test_the_feed_expands_to_the_core_occurrences(name: str) -> None:
    rule = RULES[name]
    body = _feed(rule)
    assert rule.season is not None
    start = rule.season.first.replace(day=1) - timedelta(days=31)
    for month in range(5):
        lo = datetime.combine(start + timedelta(days=31 * month), datetime.min.time(), SHANGHAI).replace(
            day=1
        )
        hi = (lo + timedelta(days=32)).replace(day=1)
        assert _expand_ics(body, lo, hi) == expand(rule, window_start=lo, window_end=hi), lo


def test_the_feed_is_valid_icalendar_with_its_timezone() -> None:
    body = _feed(RULES["daily preset with exception days"])
    text = body.decode()
    assert "BEGIN:VTIMEZONE" in text
    assert "TZID:Asia/Shanghai" in text
    assert "DTSTART;TZID=Asia/Shanghai:20261001T064000" in text
    assert "DURATION:PT1M35S" in text
    assert "UNTIL=20270430T155959Z" in text
    event = Calendar.from_ical(body).walk("VEVENT")[0]
    assert str(event["UID"]) == "campaign-test@broadcast.invalid"
    assert str(event["SUMMARY"]) == "测试计划"
    assert len(_dates(event["EXDATE"])) == 6


# ---- the API ----


@pytest.fixture
def ics_app(app: FastAPI) -> FastAPI:
    return app


@pytest.fixture
def school_campaign(users: dict[Role, User], engine: Engine, settings: Settings, tmp_path: Path) -> Campaign:
    """An approved campaign reaching the endpoints tagged school (villages 0 and 2, not 1)."""
    write(tmp_path / "files", _spoken_only(campaign("school-safety", target={"tags": ["school"]})))
    result = apply_folder(
        engine, tmp_path / "files", actors=Actors(CLI), today=date(2026, 11, 28), settings=settings
    )
    assert result.problems == []
    with Session(engine, expire_on_commit=False) as session:
        stored = session.exec(select(Campaign)).one()
        stored.status = CampaignStatus.approved
        session.add(stored)
        session.commit()
    return stored


def _spoken_only(document: dict[str, Any]) -> dict[str, Any]:
    """No chime: the feed does not need the built-in chimes generated."""
    document["content"]["playlist"]["items"] = [{"bulletin": "main"}]
    return document


def _villages(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(Village.code).order_by(col(Village.id))).all())


def test_campaign_feed(
    ics_app: FastAPI, school_campaign: Campaign, headers: dict[Role, dict[str, str]]
) -> None:
    with TestClient(ics_app) as client:
        response = client.get(
            f"/api/v1/campaigns/{school_campaign.id}/calendar.ics", headers=headers[Role.duty_officer]
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == MEDIA_TYPE
    event = Calendar.from_ical(response.content).walk("VEVENT")[0]
    assert str(event["UID"]) == "campaign-school-safety@broadcast.invalid"
    assert "河道巡查提醒" in str(event["SUMMARY"])
    assert "每天 06:40、18:20" in str(event["DESCRIPTION"])


def test_village_feed_lists_the_campaigns_reaching_it(
    ics_app: FastAPI, school_campaign: Campaign, headers: dict[Role, dict[str, str]], engine: Engine
) -> None:
    codes = _villages(engine)
    with TestClient(ics_app) as client:
        reached = client.get(f"/api/v1/villages/{codes[0]}/calendar.ics", headers=headers[Role.propagandist])
        missed = client.get(f"/api/v1/villages/{codes[1]}/calendar.ics", headers=headers[Role.propagandist])
    assert reached.status_code == 200
    assert len(Calendar.from_ical(reached.content).walk("VEVENT")) == 1
    assert missed.status_code == 200
    assert Calendar.from_ical(missed.content).walk("VEVENT") == []


def test_a_village_admin_reads_only_her_villages(
    ics_app: FastAPI, school_campaign: Campaign, headers: dict[Role, dict[str, str]], engine: Engine
) -> None:
    codes = _villages(engine)
    own = headers[Role.village_admin]
    with TestClient(ics_app) as client:
        assert client.get(f"/api/v1/villages/{codes[0]}/calendar.ics", headers=own).status_code == 200
        assert client.get(f"/api/v1/villages/{codes[1]}/calendar.ics", headers=own).status_code in (403, 404)
        assert (
            client.get(f"/api/v1/campaigns/{school_campaign.id}/calendar.ics", headers=own).status_code == 200
        )
        assert client.get("/api/v1/campaigns/999999/calendar.ics", headers=own).status_code == 404
        assert client.get(f"/api/v1/villages/{codes[0]}/calendar.ics").status_code == 401


def test_a_campaign_outside_her_villages_is_not_found(
    ics_app: FastAPI,
    users: dict[Role, User],
    headers: dict[Role, dict[str, str]],
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
) -> None:
    codes = _villages(engine)
    write(tmp_path / "files", _spoken_only(campaign("elsewhere", target={"villages": [codes[3]]})))
    assert (
        apply_folder(
            engine, tmp_path / "files", actors=Actors(CLI), today=date(2026, 11, 28), settings=settings
        ).problems
        == []
    )
    with Session(engine) as session:
        campaign_id = session.exec(select(Campaign.id)).one()
    with TestClient(ics_app) as client:
        response = client.get(
            f"/api/v1/campaigns/{campaign_id}/calendar.ics", headers=headers[Role.village_admin]
        )
    assert response.status_code == 404
