"""Presets produce the RFC 5545 rule a person expects, and describe() says it back in Chinese."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from broadcast.scheduling import (
    SHANGHAI,
    Recurrence,
    RecurrenceError,
    Season,
    daily_at,
    describe,
    every_n_days,
    expand,
    on_dates,
    weekdays_at,
)

JUNE = Season(date(2026, 6, 1), date(2026, 6, 30))
ALL = {"window_start": datetime(2026, 1, 1, tzinfo=UTC), "window_end": datetime(2027, 1, 1, tzinfo=UTC)}


def local(rule: Recurrence) -> list[datetime]:
    return [moment.astimezone(SHANGHAI).replace(tzinfo=None) for moment in expand(rule, **ALL)]


def test_daily_at_mixed_minutes_is_one_rule_with_bysetpos() -> None:
    rule = daily_at(["18:20", "06:40", "12:10"], season=JUNE)
    assert rule.rrule == "FREQ=DAILY;BYHOUR=6,12,18;BYMINUTE=10,20,40;BYSETPOS=3,4,8"
    got = local(rule)
    assert len(got) == 90
    assert {moment.time() for moment in got} == {time(6, 40), time(12, 10), time(18, 20)}
    assert describe(rule) == "每天 06:40、12:10、18:20（2026-06-01 至 2026-06-30）"


def test_daily_at_same_minute_needs_no_bysetpos() -> None:
    rule = daily_at([time(6, 30), time(12), time(18, 30)][1:], season=JUNE)
    assert rule.rrule == "FREQ=DAILY;BYHOUR=12,18;BYMINUTE=0,30;BYSETPOS=1,4"
    assert daily_at(["06:30", "18:30"], season=JUNE).rrule == "FREQ=DAILY;BYHOUR=6,18;BYMINUTE=30"


def test_weekdays_at_skips_weekends_and_starts_on_a_weekday() -> None:
    season = Season(date(2026, 6, 6), date(2026, 6, 14))  # Saturday to Sunday
    rule = weekdays_at(["07:00"], season=season, exception_days=frozenset({date(2026, 6, 10)}))
    assert rule.dtstart == datetime(2026, 6, 8, 7, tzinfo=SHANGHAI)
    assert [moment.day for moment in local(rule)] == [8, 9, 11, 12]
    assert describe(rule) == "工作日（周一至周五） 07:00（2026-06-06 至 2026-06-14；例外日 1 天不播）"
    with pytest.raises(RecurrenceError, match="没有工作日"):
        weekdays_at(["07:00"], season=Season(date(2026, 6, 6), date(2026, 6, 7)))


def test_every_n_days_anchors_on_the_season_start() -> None:
    rule = every_n_days(3, ["12:10"], season=JUNE)
    assert [moment.day for moment in local(rule)] == list(range(1, 31, 3))
    assert describe(rule).startswith("每 3 天 12:10")
    with pytest.raises(RecurrenceError, match="间隔天数 0 无效"):
        every_n_days(0, ["12:10"], season=JUNE)


def test_on_dates_uses_rdates() -> None:
    rule = on_dates([date(2026, 5, 12), date(2026, 5, 10)], ["06:40", "18:20"])
    assert rule.rrule is None
    assert expand(rule, **ALL) == [
        datetime(2026, 5, day, hour, minute, tzinfo=SHANGHAI)
        for day in (10, 12)
        for hour, minute in ((6, 40), (18, 20))
    ]
    assert describe(rule) == "指定日期 5月10日、5月12日 06:40、18:20"


@pytest.mark.parametrize(
    ("times", "message"),
    [([], "至少给出一个播出时间"), (["25:00"], "应写成 HH:MM"), (["06:40:30"], "只写到分钟")],
)
def test_bad_times_are_refused(times: list[str], message: str) -> None:
    with pytest.raises(RecurrenceError, match=message):
        daily_at(times, season=JUNE)


def test_describe_generic_rules() -> None:
    start = datetime(2026, 6, 5, 9, tzinfo=SHANGHAI)
    monthly = Recurrence(dtstart=start, rrule="FREQ=MONTHLY;BYDAY=1FR;COUNT=10", exdates=(start,))
    assert (
        describe(monthly)
        == "每月重复（规则 FREQ=MONTHLY;BYDAY=1FR;COUNT=10），自 2026-06-05 09:00 起，共 10 次（另排除 1 次）"
    )
    weekly = Recurrence(dtstart=start, rrule="FREQ=DAILY;BYDAY=MO,WE;BYHOUR=9")
    assert describe(weekly) == "每周一、三 09:00"
    assert describe(Recurrence(dtstart=start + timedelta(hours=1))) == "指定日期 6月5日 10:00"
