"""Hypothesis strategies for recurrences and campaigns (rules that always produce occurrences)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import reject
from hypothesis import strategies as st

from broadcast.scheduling import SHANGHAI, Recurrence, RecurrenceError, Season

NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@st.composite
def rrule_texts(draw: st.DrawFn, dtstart: datetime) -> str:
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY"]))
    parts = [f"FREQ={freq}"]
    interval = draw(st.integers(1, 3 if freq in ("DAILY", "HOURLY") else 4))
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    if freq in ("DAILY", "WEEKLY") and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True))
        parts.append("BYDAY=" + ",".join(chosen))
    if freq == "MONTHLY" and draw(st.booleans()):
        parts.append(
            "BYMONTHDAY="
            + ",".join(map(str, draw(st.lists(st.integers(1, 28), min_size=1, max_size=3, unique=True))))
        )
    if freq == "YEARLY" and draw(st.booleans()):
        parts.append(
            "BYMONTH="
            + ",".join(map(str, draw(st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True))))
        )
    if freq != "HOURLY" and draw(st.booleans()):
        parts.append(
            "BYHOUR="
            + ",".join(map(str, draw(st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True))))
        )
    if draw(st.booleans()):
        parts.append(
            "BYMINUTE="
            + ",".join(map(str, draw(st.lists(st.integers(0, 59), min_size=1, max_size=2, unique=True))))
        )
    ending = draw(st.sampled_from(["none", "count", "until"]))
    if ending == "count":
        parts.append(f"COUNT={draw(st.integers(1, 60))}")
    elif ending == "until":
        until = dtstart.astimezone(UTC) + timedelta(days=draw(st.integers(1, 3000)))
        parts.append(f"UNTIL={until:%Y%m%dT%H%M%SZ}")
    return ";".join(parts)


@st.composite
def recurrences(draw: st.DrawFn, *, first_year: int = 2019) -> Recurrence:
    tz = draw(st.sampled_from([SHANGHAI, SHANGHAI, NEW_YORK]))
    day = draw(st.dates(date(first_year, 1, 1), date(2026, 12, 31)))
    dtstart = datetime.combine(
        day, time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 10, 30, 45]))), tz
    )
    text = draw(rrule_texts(dtstart))
    offsets = draw(st.lists(st.integers(0, 3000), max_size=4))
    exdates = tuple(dtstart + timedelta(days=offset) for offset in offsets)
    season = None
    if draw(st.booleans()):
        first = draw(st.dates(date(2024, 1, 1), date(2027, 6, 30)))
        season = Season(first, first + timedelta(days=draw(st.integers(0, 400))))
    holidays = frozenset(draw(st.lists(st.dates(date(2025, 1, 1), date(2027, 12, 31)), max_size=20)))
    try:
        return Recurrence(
            dtstart=dtstart, rrule=text, exdates=exdates, season=season, exception_days=holidays
        )
    except RecurrenceError:  # e.g. BYDAY=MO with an UNTIL before the first Monday
        reject()


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime, datetime]:
    naive_bounds = datetime(2025, 1, 1), datetime(2027, 6, 1)  # noqa: DTZ001 - hypothesis wants naive bounds
    start = draw(st.datetimes(*naive_bounds, timezones=st.just(UTC)))
    start = start.replace(microsecond=0)
    return start, start + timedelta(hours=draw(st.integers(1, 24 * 40)))
