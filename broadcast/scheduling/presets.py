"""Simple schedule choices for the API and console, turned into RFC 5545 recurrences, and back into words.

The presets cover what a propagandist asks for ("every day at 06:40, 12:10 and 18:20", "weekdays",
"every 3 days", "on these dates"). Several times of day with different minutes are one DAILY
RRULE: BYHOUR x BYMINUTE gives every combination, and BYSETPOS keeps only the wanted ones
(06:40, 12:10, 18:20 -> BYHOUR=6,12,18;BYMINUTE=10,20,40;BYSETPOS=3,4,8), so a campaign stays
one RRULE as RFC 5545 recommends and exports to any calendar app.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from itertools import product

from broadcast.scheduling.recurrence import SHANGHAI, Recurrence, RecurrenceError, Season

_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_WEEKDAY_NAMES = dict(zip(_WEEKDAYS, "一二三四五六日", strict=True))
_WORKDAYS = "MO,TU,WE,TH,FR"
_MAX_SETPOS = 366


def parse_times(times: Iterable[time | str]) -> tuple[time, ...]:
    """Times of day from ``time`` values or "HH:MM" text: sorted, unique, at least one."""
    parsed: set[time] = set()
    for value in times:
        if isinstance(value, str):
            try:
                value = time.fromisoformat(value.strip())
            except ValueError as exc:
                raise RecurrenceError(f"播出时间「{value}」无效，应写成 HH:MM，例如 06:40。") from exc
        if value.second or value.microsecond or value.tzinfo is not None:
            raise RecurrenceError(f"播出时间 {value.isoformat()} 应只写到分钟（HH:MM），不带秒和时区。")
        parsed.add(value)
    if not parsed:
        raise RecurrenceError("请至少给出一个播出时间，例如 06:40。")
    return tuple(sorted(parsed))


def daily_at(
    times: Iterable[time | str],
    *,
    season: Season,
    tz: tzinfo = SHANGHAI,
    exception_days: frozenset[date] = frozenset(),
) -> Recurrence:
    """Every day of the season at these local times."""
    return _daily(parse_times(times), season.first, "FREQ=DAILY", season, tz, exception_days)


def weekdays_at(
    times: Iterable[time | str],
    *,
    season: Season,
    tz: tzinfo = SHANGHAI,
    exception_days: frozenset[date] = frozenset(),
) -> Recurrence:
    """Monday to Friday of the season at these local times."""
    first = season.first
    while first.weekday() > 4:
        first += timedelta(days=1)
    if first > season.last:
        raise RecurrenceError("该季节内没有工作日（周一至周五），请改用“每天”或调整季节。")
    return _daily(parse_times(times), first, f"FREQ=DAILY;BYDAY={_WORKDAYS}", season, tz, exception_days)


def every_n_days(
    n: int,
    times: Iterable[time | str],
    *,
    season: Season,
    tz: tzinfo = SHANGHAI,
    exception_days: frozenset[date] = frozenset(),
) -> Recurrence:
    """Every ``n`` days from the season's first day, at these local times."""
    if not 1 <= n <= 366:
        raise RecurrenceError(f"间隔天数 {n} 无效：应为 1 到 366 之间的整数。")
    head = "FREQ=DAILY" if n == 1 else f"FREQ=DAILY;INTERVAL={n}"
    return _daily(parse_times(times), season.first, head, season, tz, exception_days)


def on_dates(
    dates: Iterable[date],
    times: Iterable[time | str],
    *,
    tz: tzinfo = SHANGHAI,
    exception_days: frozenset[date] = frozenset(),
) -> Recurrence:
    """These dates at these local times (RDATEs); the season spans the first to the last date."""
    days = sorted(set(dates))
    if not days:
        raise RecurrenceError("请至少给出一个播出日期。")
    clock = parse_times(times)
    moments = [datetime.combine(day, at, tz) for day, at in product(days, clock)]
    return Recurrence(
        dtstart=moments[0],
        rdates=tuple(moments),
        season=Season(days[0], days[-1]),
        exception_days=exception_days,
    )


def _daily(
    clock: Sequence[time],
    first: date,
    head: str,
    season: Season,
    tz: tzinfo,
    exception_days: frozenset[date],
) -> Recurrence:
    return Recurrence(
        dtstart=datetime.combine(first, clock[0], tz),
        rrule=f"{head};{_times_rule(clock)}",
        season=season,
        exception_days=exception_days,
    )


def _times_rule(clock: Sequence[time]) -> str:
    """BYHOUR/BYMINUTE (and BYSETPOS when the grid holds more than the wanted times)."""
    hours = sorted({at.hour for at in clock})
    minutes = sorted({at.minute for at in clock})
    grid = [time(hour, minute) for hour, minute in product(hours, minutes)]
    text = f"BYHOUR={_join(hours)};BYMINUTE={_join(minutes)}"
    if len(grid) == len(clock):
        return text
    positions = [grid.index(at) + 1 for at in clock]
    if positions[-1] > _MAX_SETPOS:
        raise RecurrenceError("播出时间点太多，无法写成一条规则，请减少每天的播出次数。")
    return f"{text};BYSETPOS={_join(positions)}"


def times_of_day(rule: Recurrence) -> tuple[time, ...]:
    """The local times of day a DAILY/WEEKLY rule plays at (BYSETPOS applied for DAILY rules)."""
    parts = rule.parts
    hours = _ints(parts.get("BYHOUR")) or [rule.dtstart.hour]
    minutes = _ints(parts.get("BYMINUTE")) or [rule.dtstart.minute]
    grid = [time(hour, minute) for hour, minute in product(sorted(hours), sorted(minutes))]
    positions = _ints(parts.get("BYSETPOS"))
    if not positions or parts.get("FREQ") != "DAILY":
        return tuple(grid)
    return tuple(sorted({grid[p - 1 if p > 0 else p] for p in positions if -len(grid) <= p <= len(grid)}))


def describe(rule: Recurrence) -> str:
    """The recurrence in Chinese, e.g. "每天 06:40、12:10、18:20（2026-06-01 至 2026-06-30）"."""
    text = _describe_dates(rule) if rule.rrule is None else _describe_rule(rule)
    extras = []
    if rule.season is not None and rule.rrule is not None:
        extras.append(f"{rule.season.first.isoformat()} 至 {rule.season.last.isoformat()}")
    if rule.exdates:
        extras.append(f"另排除 {len(rule.exdates)} 次")
    if rule.exception_days:
        extras.append(f"例外日 {len(rule.exception_days)} 天不播")
    return f"{text}（{'；'.join(extras)}）" if extras else text


def _describe_rule(rule: Recurrence) -> str:
    parts = rule.parts
    freq, interval = parts["FREQ"], int(parts.get("INTERVAL", "1"))
    days = parts.get("BYDAY", "")
    if freq == "DAILY" and not set(parts) - {"FREQ", "INTERVAL", "BYDAY", "BYHOUR", "BYMINUTE", "BYSETPOS"}:
        if days == _WORKDAYS and interval == 1:
            head = "工作日（周一至周五）"
        elif days and interval == 1:
            head = "每周" + "、".join(_WEEKDAY_NAMES.get(day, day) for day in days.split(","))
        else:
            head = "每天" if interval == 1 else f"每 {interval} 天"
        if not days or interval == 1:
            return f"{head} {_join_times(times_of_day(rule))}"
    return _describe_generic(rule)


def _describe_generic(rule: Recurrence) -> str:
    parts = rule.parts
    units = {"YEARLY": "年", "MONTHLY": "月", "WEEKLY": "周", "DAILY": "天", "HOURLY": "小时"}
    interval = int(parts.get("INTERVAL", "1"))
    every = f"每{units[parts['FREQ']]}" if interval == 1 else f"每 {interval} {units[parts['FREQ']]}"
    start = rule.dtstart.strftime("%Y-%m-%d %H:%M")
    ending = ""
    if "COUNT" in parts:
        ending = f"，共 {parts['COUNT']} 次"
    elif "UNTIL" in parts:
        ending = f"，截至 {parts['UNTIL']}"
    return f"{every}重复（规则 {rule.rrule}），自 {start} 起{ending}"


def _describe_dates(rule: Recurrence) -> str:
    moments = sorted({rule.dtstart, *rule.rdates})
    local = [moment.astimezone(rule.tz) for moment in moments]
    days = sorted({moment.date() for moment in local})
    clock = sorted({moment.time().replace(tzinfo=None) for moment in local})
    if len(local) == len(days) * len(clock):
        names = "、".join(f"{day.month}月{day.day}日" for day in days)
        return f"指定日期 {names} {_join_times(clock)}"
    return "指定时间 " + "、".join(moment.strftime("%m月%d日 %H:%M") for moment in local)


def _join_times(clock: Iterable[time]) -> str:
    return "、".join(at.strftime("%H:%M") for at in clock)


def _join(values: Iterable[int]) -> str:
    return ",".join(str(value) for value in values)


def _ints(text: str | None) -> list[int]:
    return [int(value) for value in text.split(",")] if text else []
