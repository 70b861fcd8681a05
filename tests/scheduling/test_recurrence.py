"""Recurrence validation (precise Chinese refusals) and expansion properties."""

from __future__ import annotations

import time as clock
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broadcast.scheduling import SHANGHAI, Recurrence, RecurrenceError, Season, expand, expand_detailed
from broadcast.scheduling.recurrence import Exclusion
from tests.scheduling.strategies import recurrences, windows

START = datetime(2026, 6, 1, 6, 40, tzinfo=SHANGHAI)
PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(
    ("rrule", "message"),
    [
        ("FREQ=DAILY;COUNT=3;UNTIL=20261231T000000Z", "COUNT 与 UNTIL 不能同时出现"),
        ("FREQ=DAILY;UNTIL=20261231", "UNTIL 必须是 UTC 时间"),
        ("FREQ=DAILY;UNTIL=20260101T000000Z", "早于 DTSTART"),
        ("FREQ=DAILY;UNTIL=20261399T000000Z", "不是有效的日期时间"),
        ("FREQ=MINUTELY", "不支持 FREQ=MINUTELY"),
        ("FREQ=SECONDLY", "不支持 FREQ=SECONDLY"),
        ("FREQ=DAILY;BYSECOND=5", "不支持 BYSECOND"),
        ("FREQ=FORTNIGHTLY", "缺少有效的 FREQ"),
        ("BYHOUR=6", "缺少有效的 FREQ"),
        ("FREQ=DAILY;BYDAY=XX", "RRULE 无效"),
        ("FREQ=DAILY;BYHOUR=25", "RRULE 无效"),
        ("FREQ=DAILY;FOO=1", "不支持的参数：FOO"),
        ("FREQ=DAILY;;BYHOUR=6", "格式错误"),
        ("FREQ=DAILY;FREQ=WEEKLY", "出现了两次"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL=0 无效"),
        ("FREQ=DAILY;COUNT=-1", "COUNT=-1 无效"),
        ("FREQ=DAILY;COUNT=99999", "COUNT=99999 无效"),
        ("   ", "RRULE 为空"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "不会产生任何播出时间"),
        ("FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=31", "不会产生任何播出时间"),
    ],
)
def test_invalid_rrule_is_refused_with_a_precise_message(rrule: str, message: str) -> None:
    with pytest.raises(RecurrenceError) as caught:
        Recurrence(dtstart=START, rrule=rrule)
    assert message in caught.value.message
    assert isinstance(caught.value, ValueError)


def test_rule_that_never_matches_again_is_refused_in_bounded_time() -> None:
    started = clock.perf_counter()
    with pytest.raises(RecurrenceError, match="不会产生任何播出时间"):
        Recurrence(dtstart=START, rrule="FREQ=DAILY;INTERVAL=7;BYDAY=TU")  # START is a Monday
    assert clock.perf_counter() - started < 5


def test_naive_datetimes_and_bad_seasons_are_refused() -> None:
    with pytest.raises(RecurrenceError, match=r"DTSTART .* 缺少时区"):
        Recurrence(dtstart=datetime(2026, 6, 1, 6, 40))  # noqa: DTZ001
    with pytest.raises(RecurrenceError, match=r"EXDATE .* 缺少时区"):
        Recurrence(dtstart=START, rrule="FREQ=DAILY", exdates=(datetime(2026, 6, 2, 6, 40),))  # noqa: DTZ001
    with pytest.raises(RecurrenceError, match=r"RDATE .* 缺少时区"):
        Recurrence(dtstart=START, rdates=(datetime(2026, 6, 2, 6, 40),))  # noqa: DTZ001
    with pytest.raises(RecurrenceError, match="早于开始日期"):
        Season(date(2026, 6, 30), date(2026, 6, 1))
    with pytest.raises(RecurrenceError, match=r"时间窗口 .* 缺少时区"):
        expand(Recurrence(dtstart=START), window_start=datetime(2026, 1, 1), window_end=START)  # noqa: DTZ001
    with pytest.raises(RecurrenceError, match="毫秒"):
        Recurrence(dtstart=START.replace(microsecond=5))


def test_rrule_text_is_normalised() -> None:
    rule = Recurrence(dtstart=START, rrule="rrule:freq=daily;byhour=6,12")
    assert rule.rrule == "FREQ=DAILY;BYHOUR=6,12"
    assert rule == Recurrence(dtstart=START, rrule="FREQ=DAILY;BYHOUR=6,12")


def test_season_exception_days_and_exdates() -> None:
    rule = Recurrence(
        dtstart=START,
        rrule="FREQ=DAILY",
        exdates=(datetime(2026, 6, 3, 6, 40, tzinfo=SHANGHAI),),
        season=Season(date(2026, 6, 2), date(2026, 6, 5)),
        exception_days=frozenset({date(2026, 6, 4)}),
    )
    result = expand_detailed(
        rule, window_start=START - timedelta(days=3), window_end=START + timedelta(days=30)
    )
    local = [moment.astimezone(SHANGHAI).date() for moment in result.occurrences]
    assert local == [date(2026, 6, 2), date(2026, 6, 5)]
    assert [(item.at.astimezone(SHANGHAI).day, item.reason) for item in result.excluded] == [
        (3, Exclusion.EXDATE),
        (4, Exclusion.EXCEPTION_DAY),
    ]


def test_open_ended_rule_expands_only_the_window() -> None:
    rule = Recurrence(dtstart=START, rrule="FREQ=DAILY;BYHOUR=6,12,18;BYMINUTE=40")
    window_start = datetime(2030, 3, 1, tzinfo=SHANGHAI)
    got = expand(rule, window_start=window_start, window_end=window_start + timedelta(days=1))
    assert [moment.astimezone(SHANGHAI).hour for moment in got] == [6, 12, 18]
    assert all(moment.tzinfo is UTC for moment in got)


def test_dtstart_is_always_an_occurrence_as_in_rfc_5545() -> None:
    rule = Recurrence(dtstart=START, rdates=(START + timedelta(days=2),))
    assert expand(rule, window_start=START, window_end=START + timedelta(days=5)) == [
        START.astimezone(UTC),
        (START + timedelta(days=2)).astimezone(UTC),
    ]


def test_expansion_cost_does_not_depend_on_age() -> None:
    text = "FREQ=DAILY;BYHOUR=6,12,18;BYMINUTE=40"
    old = Recurrence(dtstart=START.replace(year=2021), rrule=text)
    new = Recurrence(dtstart=START, rrule=text)
    window = {"window_start": START + timedelta(days=1), "window_end": START + timedelta(days=2)}

    def cost(rule: Recurrence) -> float:
        best = float("inf")
        for _ in range(5):
            started = clock.perf_counter()
            for _ in range(50):
                expand(rule, **window)
            best = min(best, clock.perf_counter() - started)
        return best

    assert expand(old, **window) == expand(new, **window)
    assert cost(old) < 3 * cost(new)


def naive_expand(rule: Recurrence, start: datetime, end: datetime) -> list[datetime]:
    """Reference: dateutil's rruleset iterated from DTSTART, no fast-forward."""
    rset = rrulestr(f"RRULE:{rule.rrule};WKST=MO", dtstart=rule.dtstart, forceset=True)
    rset.rdate(rule.dtstart)
    for moment in rule.exdates:
        rset.exdate(moment)
    lo, hi = start, end
    if rule.season is not None:
        season_lo, season_hi = rule.season.bounds(rule.tz)
        lo, hi = max(lo, season_lo), min(hi, season_hi)
    found = []
    for moment in rset:
        if moment.astimezone(UTC) >= hi + timedelta(days=1):
            break
        real = moment.astimezone(UTC).astimezone(rule.tz).replace(tzinfo=None) == moment.replace(tzinfo=None)
        if real and lo <= moment < hi and moment.date() not in rule.exception_days:
            found.append(moment.astimezone(UTC))
    return sorted(set(found))


@PROPERTY
@given(rule=recurrences(), window=windows())
def test_expansion_invariants(rule: Recurrence, window: tuple[datetime, datetime]) -> None:
    start, end = window
    got = expand(rule, window_start=start, window_end=end)
    assert got == sorted(set(got))
    exdates = {moment.astimezone(UTC) for moment in rule.exdates}
    for moment in got:
        assert start <= moment < end
        assert moment not in exdates
        local = moment.astimezone(rule.tz).date()
        assert local not in rule.exception_days
        if rule.season is not None:
            assert rule.season.first <= local <= rule.season.last


@PROPERTY
@given(rule=recurrences(), window=windows(), cut=st.floats(0, 1))
def test_splitting_the_window_gives_the_same_union(
    rule: Recurrence, window: tuple[datetime, datetime], cut: float
) -> None:
    start, end = window
    middle = start + timedelta(seconds=int((end - start).total_seconds() * cut))
    whole = expand(rule, window_start=start, window_end=end)
    halves = expand(rule, window_start=start, window_end=middle) + expand(
        rule, window_start=middle, window_end=end
    )
    assert halves == whole


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=recurrences(first_year=2022), window=windows())
def test_fast_forward_equals_naive_expansion(rule: Recurrence, window: tuple[datetime, datetime]) -> None:
    start, end = window
    assert expand(rule, window_start=start, window_end=end) == naive_expand(rule, start, end)


@pytest.mark.parametrize("day", [date(2026, 3, 8), date(2026, 11, 1)])
def test_windows_at_dst_changes_match_naive_expansion(day: date) -> None:
    new_york = ZoneInfo("America/New_York")
    rule = Recurrence(
        dtstart=datetime(2025, 12, 1, 1, 30, tzinfo=new_york), rrule="FREQ=DAILY;BYHOUR=1,2,3;BYMINUTE=30"
    )
    origin = datetime.combine(day, time(0), new_york).astimezone(UTC) - timedelta(hours=2)
    for quarter in range(0, 24):
        start = origin + timedelta(minutes=15 * quarter)
        for hours in (1, 3):
            end = start + timedelta(hours=hours)
            assert expand(rule, window_start=start, window_end=end) == naive_expand(rule, start, end)
    spring = expand(rule, window_start=origin, window_end=origin + timedelta(days=1))
    local_hours = [moment.astimezone(new_york).hour for moment in spring]
    # 02:30 does not exist in March (ignored, RFC 5545 §3.3.10); 01:30 in November is its first instance.
    assert local_hours == ([1, 3] if day.month == 3 else [1, 2, 3])
