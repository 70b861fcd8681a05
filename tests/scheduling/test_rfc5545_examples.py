"""RFC 5545 §3.8.5.3's own recurrence examples expand exactly as the RFC lists them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from broadcast.scheduling import Recurrence, expand

NY = ZoneInfo("America/New_York")
EVERYTHING = (datetime(1990, 1, 1, tzinfo=UTC), datetime(2010, 1, 1, tzinfo=UTC))


def at9(*days: tuple[int, int, int]) -> list[datetime]:
    return [datetime(y, m, d, 9, tzinfo=NY) for y, m, d in days]


def days(year: int, month: int, first: int, last: int, step: int = 1) -> list[tuple[int, int, int]]:
    return [(year, month, day) for day in range(first, last + 1, step)]


def span(first: date, last: date) -> list[tuple[int, int, int]]:
    count = (last - first).days + 1
    return [((d := first + timedelta(days=i)).year, d.month, d.day) for i in range(count)]


# (name, DTSTART (local New York), RRULE, EXDATEs, window end, expected local occurrences)
EXAMPLES = [
    ("daily, 10 occurrences", (1997, 9, 2), "FREQ=DAILY;COUNT=10", (), None, at9(*days(1997, 9, 2, 11))),
    (
        "daily until December 24, 1997",
        (1997, 9, 2),
        "FREQ=DAILY;UNTIL=19971224T000000Z",
        (),
        None,
        at9(*span(date(1997, 9, 2), date(1997, 12, 23))),
    ),
    (
        "every other day, forever",
        (1997, 9, 2),
        "FREQ=DAILY;INTERVAL=2",
        (),
        datetime(1997, 11, 6, tzinfo=NY),
        at9(*days(1997, 9, 2, 30, 2), *days(1997, 10, 2, 30, 2), *days(1997, 11, 1, 5, 2)),
    ),
    (
        "every 10 days, 5 occurrences",
        (1997, 9, 2),
        "FREQ=DAILY;INTERVAL=10;COUNT=5",
        (),
        None,
        at9((1997, 9, 2), (1997, 9, 12), (1997, 9, 22), (1997, 10, 2), (1997, 10, 12)),
    ),
    (
        "every day in January, for 3 years",
        (1998, 1, 1),
        "FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA",
        (),
        None,
        at9(*days(1998, 1, 1, 31), *days(1999, 1, 1, 31), *days(2000, 1, 1, 31)),
    ),
    (
        "weekly, 10 occurrences",
        (1997, 9, 2),
        "FREQ=WEEKLY;COUNT=10",
        (),
        None,
        at9(*days(1997, 9, 2, 30, 7), *days(1997, 10, 7, 28, 7), (1997, 11, 4)),
    ),
    (
        "weekly on Tuesday and Thursday for five weeks",
        (1997, 9, 2),
        "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH",
        (),
        None,
        at9(*[(1997, 9, d) for d in (2, 4, 9, 11, 16, 18, 23, 25, 30)], (1997, 10, 2)),
    ),
    (
        "every other week on Monday, Wednesday and Friday until December 24, 1997",
        (1997, 9, 1),
        "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR",
        (),
        None,
        at9(
            *[(1997, 9, d) for d in (1, 3, 5, 15, 17, 19, 29)],
            *[(1997, 10, d) for d in (1, 3, 13, 15, 17, 27, 29, 31)],
            *[(1997, 11, d) for d in (10, 12, 14, 24, 26, 28)],
            *[(1997, 12, d) for d in (8, 10, 12, 22)],
        ),
    ),
    (
        "monthly on the first Friday for 10 occurrences",
        (1997, 9, 5),
        "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
        (),
        None,
        at9(
            (1997, 9, 5),
            (1997, 10, 3),
            (1997, 11, 7),
            (1997, 12, 5),
            (1998, 1, 2),
            (1998, 2, 6),
            (1998, 3, 6),
            (1998, 4, 3),
            (1998, 5, 1),
            (1998, 6, 5),
        ),
    ),
    (
        "monthly on the second-to-last Monday for 6 months",
        (1997, 9, 22),
        "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO",
        (),
        None,
        at9((1997, 9, 22), (1997, 10, 20), (1997, 11, 17), (1997, 12, 22), (1998, 1, 19), (1998, 2, 16)),
    ),
    (
        "monthly on the third-to-the-last day of the month, forever",
        (1997, 9, 28),
        "FREQ=MONTHLY;BYMONTHDAY=-3",
        (),
        datetime(1998, 3, 1, tzinfo=NY),
        at9((1997, 9, 28), (1997, 10, 29), (1997, 11, 28), (1997, 12, 29), (1998, 1, 29), (1998, 2, 26)),
    ),
    (
        "yearly in June and July for 10 occurrences",
        (1997, 6, 10),
        "FREQ=YEARLY;COUNT=10;BYMONTH=6,7",
        (),
        None,
        at9(*[(year, month, 10) for year in range(1997, 2002) for month in (6, 7)]),
    ),
    (
        "every Thursday in March, forever",
        (1997, 3, 13),
        "FREQ=YEARLY;BYMONTH=3;BYDAY=TH",
        (),
        datetime(1999, 4, 1, tzinfo=NY),
        at9(
            *[(1997, 3, d) for d in (13, 20, 27)],
            *[(1998, 3, d) for d in (5, 12, 19, 26)],
            *[(1999, 3, d) for d in (4, 11, 18, 25)],
        ),
    ),
    (
        "every Friday the 13th, forever",
        (1997, 9, 2),
        "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
        (datetime(1997, 9, 2, 9, tzinfo=NY),),
        datetime(2001, 1, 1, tzinfo=NY),
        at9((1998, 2, 13), (1998, 3, 13), (1998, 11, 13), (1999, 8, 13), (2000, 10, 13)),
    ),
    (
        "the first Saturday that follows the first Sunday of the month, forever",
        (1997, 9, 13),
        "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13",
        (),
        datetime(1998, 6, 14, tzinfo=NY),
        at9(
            (1997, 9, 13),
            (1997, 10, 11),
            (1997, 11, 8),
            (1997, 12, 13),
            (1998, 1, 10),
            (1998, 2, 7),
            (1998, 3, 7),
            (1998, 4, 11),
            (1998, 5, 9),
            (1998, 6, 13),
        ),
    ),
    (
        "every 4 years, the first Tuesday after a Monday in November (election day)",
        (1996, 11, 5),
        "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
        (),
        datetime(2005, 1, 1, tzinfo=NY),
        at9((1996, 11, 5), (2000, 11, 7), (2004, 11, 2)),
    ),
    (
        "the third instance of Tuesday, Wednesday or Thursday, for the next 3 months",
        (1997, 9, 4),
        "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
        (),
        None,
        at9((1997, 9, 4), (1997, 10, 7), (1997, 11, 6)),
    ),
    (
        "the second-to-last weekday of the month",
        (1997, 9, 29),
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2",
        (),
        datetime(1998, 3, 31, tzinfo=NY),
        at9(
            (1997, 9, 29),
            (1997, 10, 30),
            (1997, 11, 27),
            (1997, 12, 30),
            (1998, 1, 29),
            (1998, 2, 26),
            (1998, 3, 30),
        ),
    ),
    (
        "Monday of week number 20, forever",
        (1997, 5, 12),
        "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
        (),
        datetime(2000, 1, 1, tzinfo=NY),
        at9((1997, 5, 12), (1998, 5, 11), (1999, 5, 17)),
    ),
]


def _rule(example: tuple[Any, ...]) -> tuple[Recurrence, datetime, list[datetime]]:
    _, (year, month, day), text, exdates, end, expected = example
    rule = Recurrence(dtstart=datetime(year, month, day, 9, tzinfo=NY), rrule=text, exdates=exdates)
    return rule, end or EVERYTHING[1], [moment.astimezone(UTC) for moment in expected]


@pytest.mark.parametrize("example", EXAMPLES, ids=[example[0] for example in EXAMPLES])
def test_rfc_example_expands_as_listed(example: tuple[Any, ...]) -> None:
    rule, end, expected = _rule(example)
    assert expand(rule, window_start=EVERYTHING[0], window_end=end) == expected


@pytest.mark.parametrize("example", EXAMPLES, ids=[example[0] for example in EXAMPLES])
def test_rfc_example_any_later_window_gives_the_same_tail(example: tuple[Any, ...]) -> None:
    rule, end, expected = _rule(example)
    for index in range(1, len(expected), max(1, len(expected) // 7)):
        start = expected[index] - timedelta(minutes=1)
        assert expand(rule, window_start=start, window_end=end) == expected[index:]


def test_rfc_example_keeps_wall_time_across_dst() -> None:
    rule = Recurrence(dtstart=datetime(1997, 9, 2, 9, tzinfo=NY), rrule="FREQ=WEEKLY;COUNT=10")
    hours_utc = {moment.hour for moment in expand(rule, window_start=EVERYTHING[0], window_end=EVERYTHING[1])}
    assert hours_utc == {13, 14}  # 9:00 EDT and 9:00 EST
