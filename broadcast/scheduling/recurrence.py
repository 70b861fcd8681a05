"""A campaign's recurrence in RFC 5545 terms and its expansion over a time window.

Pure: values in, values out; no clock, database or network.

A :class:`Recurrence` is DTSTART (aware local wall time), an optional RRULE, RDATEs and EXDATEs,
plus the campaign's season (first and last local date, inclusive) and its exception days (whole
local days: holidays, exam days). It validates itself on construction, so an invalid one cannot
exist; every refusal is a :class:`RecurrenceError` carrying a Chinese message a person can act on.

Expansion happens in local wall time with python-dateutil (each occurrence keeps its wall-clock
time across DST changes, as RFC 5545 requires) and is returned in UTC.

Why the cost does not depend on the campaign's age: an RRULE without COUNT is periodic on a grid
of FREQ periods spaced INTERVAL apart, counted from the period that holds DTSTART. Expansion
rebuilds the rule with its DTSTART moved to the start of the last grid period that begins before
the window (so INTERVAL alignment is kept) and with every value dateutil would have taken from the
original DTSTART (BYHOUR, BYMINUTE, BYSECOND, and BYMONTH/BYMONTHDAY/BYDAY for rules without a
day filter) written out explicitly, and with UNTIL capped just past the window. The rebuilt rule
yields exactly the original occurrences from that period on, so expanding a 24 h window touches one
or two periods whether DTSTART was yesterday or five years ago. COUNT rules cannot be moved (the
count runs from DTSTART), so they are iterated from DTSTART, which costs at most COUNT steps
(COUNT is capped at :data:`MAX_COUNT`).

dateutil only checks UNTIL on candidates that match the rule, so a rule that can never match
again (``FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30``) would scan to year 9999. Construction refuses such
rules: it probes the rule shifted by a multiple of 400 years (the Gregorian calendar repeats
exactly every 400 years, weekdays included) to just before year 9999, where dateutil stops on its
own, and refuses a rule with no occurrence in those 400-800 years.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, HOURLY, MONTHLY, WEEKLY, YEARLY, rrulestr
from dateutil.rrule import rrule as RRule

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_COUNT = 10_000
MAX_INTERVAL = 1_000
_YEARS = (1900, 2999)
_FREQS = {"YEARLY": YEARLY, "MONTHLY": MONTHLY, "WEEKLY": WEEKLY, "DAILY": DAILY, "HOURLY": HOURLY}
_KNOWN_PARTS = frozenset(
    {"FREQ", "UNTIL", "COUNT", "INTERVAL", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY"}
    | {"BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST"}
)
_DAY_FILTERS = ("BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY")
_UNTIL_UTC = re.compile(r"^\d{8}T\d{6}Z$")
_CALENDAR_CYCLE_YEARS = 400


class SchedulingError(ValueError):
    """Invalid scheduling input; ``message`` is Chinese and says what to fix (the API maps it to 422)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RecurrenceError(SchedulingError):
    """An invalid recurrence: bad RRULE, naive datetime, UNTIL before DTSTART, bad season..."""


class Exclusion(StrEnum):
    EXDATE = "exdate"
    EXCEPTION_DAY = "exception_day"


@dataclass(frozen=True, slots=True)
class Excluded:
    """An occurrence the rule produced inside the window that the recurrence itself removes."""

    at: datetime
    reason: Exclusion


@dataclass(frozen=True, slots=True)
class Expansion:
    """Occurrences (aware UTC, sorted, unique) and what EXDATEs and exception days removed."""

    occurrences: tuple[datetime, ...]
    excluded: tuple[Excluded, ...]


@dataclass(frozen=True, slots=True)
class Season:
    """A campaign's season: first and last local date, both inclusive."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise RecurrenceError(
                f"季节结束日期 {self.last.isoformat()} 早于开始日期 {self.first.isoformat()}，请调换或改正。"
            )

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """The season as a half-open instant range [first 00:00, day after last 00:00) in ``tz``."""
        start = datetime.combine(self.first, time(0), tz)
        return start, datetime.combine(self.last + timedelta(days=1), time(0), tz)


@dataclass(frozen=True)
class Recurrence:
    """RFC 5545 recurrence of one campaign, validated on construction.

    ``dtstart`` is aware local wall time (normally Asia/Shanghai); ``rrule`` is the RRULE value
    (``FREQ=DAILY;BYHOUR=6;BYMINUTE=40``, an ``RRULE:`` prefix is accepted and dropped);
    ``rdates``/``exdates`` are aware instants; ``season`` and ``exception_days`` are local dates.
    As in RFC 5545 (and dateutil's ``compatible`` mode), DTSTART is always an occurrence itself.
    """

    dtstart: datetime
    rrule: str | None = None
    rdates: tuple[datetime, ...] = ()
    exdates: tuple[datetime, ...] = ()
    season: Season | None = None
    exception_days: frozenset[date] = frozenset()
    _rule: RRule | None = field(init=False, repr=False, compare=False, default=None)
    _parts: Mapping[str, str] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        _check_dtstart(self.dtstart)
        _check_aware(self.rdates, "RDATE")
        _check_aware(self.exdates, "EXDATE")
        object.__setattr__(self, "rdates", tuple(sorted(set(self.rdates))))
        object.__setattr__(self, "exdates", tuple(sorted(set(self.exdates))))
        if self.rrule is None:
            return
        text, parts = _parse_parts(self.rrule)
        rule = _build_rule(text, parts, self.dtstart)
        object.__setattr__(self, "rrule", text)
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "_rule", rule)

    @property
    def tz(self) -> tzinfo:
        tz = self.dtstart.tzinfo
        assert tz is not None  # checked on construction
        return tz

    @property
    def parts(self) -> Mapping[str, str]:
        """The RRULE's parts by upper-case name (empty without an RRULE)."""
        return self._parts


def expand(rule: Recurrence, *, window_start: datetime, window_end: datetime) -> list[datetime]:
    """Occurrences (aware UTC) in [window_start, window_end) and the season, minus exclusions."""
    return list(expand_detailed(rule, window_start=window_start, window_end=window_end).occurrences)


def expand_detailed(rule: Recurrence, *, window_start: datetime, window_end: datetime) -> Expansion:
    """Like :func:`expand`, and also report the occurrences that EXDATEs and exception days removed."""
    _check_window(window_start, window_end)
    lo, hi = window_start, window_end
    if rule.season is not None:
        season_lo, season_hi = rule.season.bounds(rule.tz)
        lo, hi = max(lo, season_lo), min(hi, season_hi)
    if lo >= hi:
        return Expansion((), ())
    found = {at.astimezone(UTC) for at in _rule_candidates(rule, lo, hi) if _exists(at)}
    found.update(at.astimezone(UTC) for at in (rule.dtstart, *rule.rdates))
    inside = sorted(at for at in found if lo <= at < hi)
    exdates = {at.astimezone(UTC) for at in rule.exdates}
    kept: list[datetime] = []
    excluded: list[Excluded] = []
    for at in inside:
        if at in exdates:
            excluded.append(Excluded(at, Exclusion.EXDATE))
        elif at.astimezone(rule.tz).date() in rule.exception_days:
            excluded.append(Excluded(at, Exclusion.EXCEPTION_DAY))
        else:
            kept.append(at)
    return Expansion(tuple(kept), tuple(excluded))


def _rule_candidates(rule: Recurrence, lo: datetime, hi: datetime) -> Iterator[datetime]:
    """Local-time occurrences of the RRULE around [lo, hi), widened by any UTC-offset change nearby."""
    if rule._rule is None:
        return
    margin = _offset_spread(rule.tz, lo, hi)
    if "COUNT" in rule.parts:
        for at in rule._rule:
            if at >= hi + margin:
                return
            yield at
        return
    yield from _fast_forward(rule, rule._rule, lo - margin, hi + margin)


def _fast_forward(rule: Recurrence, base: RRule, lo: datetime, hi: datetime) -> RRule:
    """``base`` restarted at the grid period holding ``lo`` and stopped at ``hi`` (see module doc)."""
    freq = _FREQS[rule.parts["FREQ"]]
    interval = int(rule.parts.get("INTERVAL", "1"))
    wkst = _weekday_index(rule.parts.get("WKST", "MO"))
    until = hi if (orig := _until(rule.parts)) is None else min(orig, hi)
    first = rule.dtstart.replace(tzinfo=None)
    target = lo.astimezone(rule.tz).replace(tzinfo=None)
    steps = (_period_index(freq, target, wkst) - _period_index(freq, first, wkst)) // interval
    if steps <= 0:
        return base.replace(until=until)
    start = _advance(freq, _period_start(freq, first, wkst), steps * interval)
    kwargs: dict[str, Any] = _explicit_defaults(rule.parts, freq, rule.dtstart)
    return base.replace(dtstart=start.replace(tzinfo=rule.tz), until=until, **kwargs)


def _offset_spread(tz: tzinfo, lo: datetime, hi: datetime) -> timedelta:
    """How far wall time and instant order can disagree near the window (zero without DST)."""
    day = timedelta(days=1)
    offsets = [moment.astimezone(tz).utcoffset() or timedelta(0) for moment in (lo - day, lo, hi, hi + day)]
    return max(offsets) - min(offsets)


def _period_index(freq: int, at: datetime, wkst: int) -> int:
    if freq == YEARLY:
        return at.year
    if freq == MONTHLY:
        return at.year * 12 + at.month - 1
    if freq == WEEKLY:
        return (at.toordinal() - (at.weekday() - wkst) % 7) // 7
    if freq == DAILY:
        return at.toordinal()
    return at.toordinal() * 24 + at.hour


def _period_start(freq: int, at: datetime, wkst: int) -> datetime:
    if freq == YEARLY:
        return datetime(at.year, 1, 1)  # noqa: DTZ001 - local wall time, zone attached by the caller
    if freq == MONTHLY:
        return datetime(at.year, at.month, 1)  # noqa: DTZ001
    midnight = datetime.combine(at.date(), time(0))
    if freq == WEEKLY:
        return midnight - timedelta(days=(at.weekday() - wkst) % 7)
    if freq == DAILY:
        return midnight
    return midnight.replace(hour=at.hour)


def _advance(freq: int, start: datetime, periods: int) -> datetime:
    if freq == YEARLY:
        return start.replace(year=start.year + periods)
    if freq == MONTHLY:
        year, month = divmod(start.month - 1 + periods, 12)
        return start.replace(year=start.year + year, month=month + 1)
    unit = {WEEKLY: timedelta(weeks=1), DAILY: timedelta(days=1)}.get(freq, timedelta(hours=1))
    return start + unit * periods


def _explicit_defaults(parts: Mapping[str, str], freq: int, dtstart: datetime) -> dict[str, int]:
    """The values dateutil would otherwise take from the ORIGINAL dtstart (mirrors ``rrule.__init__``)."""
    values = {"bysecond": dtstart.second}
    if "BYMINUTE" not in parts:
        values["byminute"] = dtstart.minute
    if "BYHOUR" not in parts and freq != HOURLY:
        values["byhour"] = dtstart.hour
    if not any(name in parts for name in _DAY_FILTERS):
        if freq == YEARLY:
            values["bymonthday"] = dtstart.day
            if "BYMONTH" not in parts:
                values["bymonth"] = dtstart.month
        elif freq == MONTHLY:
            values["bymonthday"] = dtstart.day
        elif freq == WEEKLY:
            values["byweekday"] = dtstart.weekday()
    return values


def _exists(local: datetime) -> bool:
    """False for a wall time skipped by a DST jump: RFC 5545 §3.3.10 says such instances are ignored."""
    tz = local.tzinfo
    return local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None)


def _check_dtstart(dtstart: datetime) -> None:
    if dtstart.tzinfo is None or dtstart.utcoffset() is None:
        raise RecurrenceError(
            f"DTSTART {dtstart.isoformat()} 缺少时区：请给出带时区的本地时间（例如 Asia/Shanghai）。"
        )
    if dtstart.microsecond:
        raise RecurrenceError("DTSTART 最多精确到秒，请去掉毫秒部分。")
    if not _YEARS[0] <= dtstart.year <= _YEARS[1]:
        raise RecurrenceError(f"DTSTART 的年份须在 {_YEARS[0]} 到 {_YEARS[1]} 之间。")


def _check_aware(values: tuple[datetime, ...], name: str) -> None:
    for value in values:
        if value.tzinfo is None or value.utcoffset() is None:
            raise RecurrenceError(f"{name} {value.isoformat()} 缺少时区：请给出带时区的时间。")


def _check_window(start: datetime, end: datetime) -> None:
    for value in (start, end):
        if value.tzinfo is None or value.utcoffset() is None:
            raise RecurrenceError(f"时间窗口 {value.isoformat()} 缺少时区：请给出带时区的时间。")
    if end < start:
        raise RecurrenceError("时间窗口的结束早于开始。")


def _parse_parts(text: str) -> tuple[str, dict[str, str]]:
    """Split and check RRULE text; returns the canonical text and its parts by name."""
    value = text.strip().upper().removeprefix("RRULE:")
    if not value:
        raise RecurrenceError("RRULE 为空：不需要重复时请不填，需要时写成 FREQ=DAILY;BYHOUR=6;BYMINUTE=40。")
    parts: dict[str, str] = {}
    for chunk in value.split(";"):
        name, sep, part = chunk.partition("=")
        if not sep or not name or not part:
            raise RecurrenceError(f"RRULE 格式错误：「{chunk}」应写成 名称=值，各项之间用分号分隔。")
        if name in parts:
            raise RecurrenceError(f"RRULE 中 {name} 出现了两次，请只保留一个。")
        parts[name] = part
    _check_parts(parts)
    return value, parts


def _check_parts(parts: Mapping[str, str]) -> None:
    if "BYSECOND" in parts:
        raise RecurrenceError("不支持 BYSECOND：播出计划精确到分钟即可，请删去 BYSECOND。")
    unknown = sorted(set(parts) - _KNOWN_PARTS)
    if unknown:
        raise RecurrenceError(f"RRULE 含有不支持的参数：{'、'.join(unknown)}。")
    freq = parts.get("FREQ")
    if freq in ("SECONDLY", "MINUTELY"):
        raise RecurrenceError(f"不支持 FREQ={freq}：请用 FREQ=DAILY 加 BYHOUR/BYMINUTE 列出播出时间。")
    if freq not in _FREQS:
        raise RecurrenceError(
            f"RRULE 缺少有效的 FREQ（当前为 {freq or '空'}），可选 DAILY、WEEKLY、MONTHLY、YEARLY、HOURLY。"
        )
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("COUNT 与 UNTIL 不能同时出现（RFC 5545），请只保留其中一个。")
    _check_int(parts, "COUNT", MAX_COUNT)
    _check_int(parts, "INTERVAL", MAX_INTERVAL)
    until = parts.get("UNTIL")
    if until is not None and not _UNTIL_UTC.match(until):
        raise RecurrenceError(
            f"UNTIL={until} 无效：DTSTART 带时区时，UNTIL 必须是 UTC 时间，例如 UNTIL=20261231T155959Z。"
        )


def _check_int(parts: Mapping[str, str], name: str, limit: int) -> None:
    if name in parts and not (parts[name].isdigit() and 1 <= int(parts[name]) <= limit):
        raise RecurrenceError(f"{name}={parts[name]} 无效：应为 1 到 {limit} 之间的整数。")


def _build_rule(text: str, parts: Mapping[str, str], dtstart: datetime) -> RRule:
    # WKST defaults to MO in RFC 5545, but to the process-global calendar.firstweekday() in dateutil.
    source = text if "WKST" in parts else f"{text};WKST=MO"
    until = _until(parts)
    try:
        rule = rrulestr(f"RRULE:{source}", dtstart=dtstart)
    except (ValueError, KeyError, IndexError, TypeError, OverflowError) as exc:
        raise RecurrenceError(f"RRULE 无效：{text}（{exc}）。") from exc
    assert isinstance(rule, RRule)
    if until is not None and until < dtstart:
        raise RecurrenceError(
            f"UNTIL {until.isoformat()} 早于 DTSTART {dtstart.astimezone(UTC).isoformat()}，该规则不会播出。"
        )
    if not _productive(rule, dtstart, until):
        raise RecurrenceError(
            f"RRULE {text} 不会产生任何播出时间（例如 2 月 30 日，或 UNTIL 之前没有符合条件的日子），"
            "请检查各 BY 条件和 UNTIL。"
        )
    return rule


def _until(parts: Mapping[str, str]) -> datetime | None:
    value = parts.get("UNTIL")
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise RecurrenceError(f"UNTIL={value} 不是有效的日期时间。") from exc


def _productive(rule: RRule, dtstart: datetime, until: datetime | None) -> bool:
    """Whether the rule has an occurrence, probed near year 9999 so dateutil's scan is bounded."""
    years = (MAXYEAR - _CALENDAR_CYCLE_YEARS - dtstart.year) // _CALENDAR_CYCLE_YEARS
    shift = years * _CALENDAR_CYCLE_YEARS
    probe_until = None
    if until is not None:
        local_until = until.astimezone(dtstart.tzinfo)
        if local_until.year + shift > MAXYEAR:
            return True
        probe_until = local_until.replace(year=local_until.year + shift)
    probe = rule.replace(dtstart=dtstart.replace(year=dtstart.year + shift), until=probe_until)
    return next(iter(probe), None) is not None


def _weekday_index(code: str) -> int:
    return ["MO", "TU", "WE", "TH", "FR", "SA", "SU"].index(code)
