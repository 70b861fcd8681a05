"""Checks of campaign input, shared by create and update: each refusal is a 422 naming what to fix.

The pure scheduling core raises :class:`SchedulingError` with a Chinese message; here those become
:class:`Invalid`, and the checks that need the database (playlist revision, target) are added.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import date, timedelta, tzinfo
from itertools import pairwise
from typing import Any, ParamSpec, TypeVar

from sqlmodel import Session, select

from broadcast.errors import Invalid
from broadcast.playlists.models import Playlist, PlaylistRevision
from broadcast.scheduling.compiler import BroadcastWindow
from broadcast.scheduling.presets import daily_at, every_n_days, on_dates, times_of_day, weekdays_at
from broadcast.scheduling.recurrence import SHANGHAI, Recurrence, SchedulingError, Season, expand
from broadcast.scheduling.schemas import RecurrenceIn
from broadcast.targets.schemas import Selector
from broadcast.targets.service import count_reached

PLAYS_CHECK_DAYS = 400
_P = ParamSpec("_P")
_T = TypeVar("_T")


def scheduling(call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Call into the pure core; its refusals become 422s with the same Chinese message."""
    try:
        return call(*args, **kwargs)
    except SchedulingError as exc:
        raise Invalid(exc.message) from exc


def season_of(first: date, last: date) -> Season:
    return scheduling(Season, first, last)


def build_recurrence(
    data: RecurrenceIn, *, season: Season | None, exception_days: frozenset[date], tz: tzinfo = SHANGHAI
) -> Recurrence:
    """A preset or raw RFC 5545 recurrence bound to the season (a dates preset may bring its own)."""
    days = exception_days
    if data.preset == "dates":
        rule = scheduling(on_dates, data.dates, data.times, tz=tz, exception_days=days)
        assert rule.season is not None
        if season is not None and (rule.season.first < season.first or rule.season.last > season.last):
            raise Invalid(f"指定日期须在季节 {season.first} 至 {season.last} 之内，请调整日期或季节。")
        return scheduling(dataclasses.replace, rule, season=season or rule.season)
    if season is None:
        raise Invalid("请给出季节 season：开始日期 first 和结束日期 last。")
    if data.preset == "daily":
        return scheduling(daily_at, data.times, season=season, tz=tz, exception_days=days)
    if data.preset == "weekdays":
        return scheduling(weekdays_at, data.times, season=season, tz=tz, exception_days=days)
    if data.preset == "every_n_days":
        return scheduling(every_n_days, data.n or 1, data.times, season=season, tz=tz, exception_days=days)
    assert data.dtstart is not None
    # Aware input is read in the city's zone (its wall time is what BYHOUR means); naive input is
    # passed as is so the core refuses it with its own message.
    dtstart = data.dtstart.astimezone(tz) if data.dtstart.tzinfo is not None else data.dtstart
    return scheduling(
        Recurrence,
        dtstart=dtstart,
        rrule=data.rrule,
        rdates=tuple(data.rdates),
        exdates=tuple(data.exdates),
        season=season,
        exception_days=days,
    )


def check_windows(texts: Iterable[str]) -> list[str]:
    """Windows as canonical sorted "HH:MM-HH:MM" text; malformed, duplicate or overlapping: 422."""
    windows = sorted(scheduling(BroadcastWindow.parse, text) for text in texts)
    for before, after in pairwise(windows):
        if after.start < before.end:
            raise Invalid(f"播出时段 {before} 与 {after} 重叠，请合并或调整。")
    return [str(window) for window in windows]


def check_times_in_windows(rule: Recurrence, windows: list[str]) -> None:
    """A daily time (or a listed date's time) outside every window would never play: refuse it.

    Other frequencies (weekly, hourly...) are left to the compiler, which reports such drops.
    """
    if rule.rrule is not None and rule.parts.get("FREQ") != "DAILY":
        return
    moments = (rule.dtstart, *rule.rdates)
    clock = {at.astimezone(rule.tz).time() for at in moments} | set(times_of_day(rule) if rule.rrule else ())
    spans = [BroadcastWindow.parse(text) for text in windows]
    for at in sorted(clock):
        if not any(span.start <= at < span.end for span in spans):
            raise Invalid(
                f"播出时间 {at:%H:%M} 不在任何播出时段（{'、'.join(windows)}）内，不会播出："
                "请调整播出时间或时段。"
            )


def check_plays(rule: Recurrence) -> None:
    """The rule must play at least once in its season (looked for in the season's first 400 days)."""
    assert rule.season is not None
    start, end = rule.season.bounds(rule.tz)
    end = min(end, start + timedelta(days=PLAYS_CHECK_DAYS))
    if not expand(rule, window_start=start, window_end=end):
        raise Invalid(
            f"按该重复规则，季节 {rule.season.first} 至 {rule.season.last} 内不会播出任何一次："
            "请检查 DTSTART、RRULE、例外日和季节。"
        )


def resolve_revision(session: Session, playlist_id: int, number: int | None) -> PlaylistRevision:
    """The playlist's revision ``number`` (default: its newest); unknown playlist or revision: 422."""
    playlist = session.get(Playlist, playlist_id)
    if playlist is None:
        raise Invalid(f"节目单 {playlist_id} 不存在，请先创建节目单或选择已有的节目单。")
    number = number or playlist.current_revision
    query = select(PlaylistRevision).where(
        PlaylistRevision.playlist_id == playlist_id, PlaylistRevision.number == number
    )
    revision = session.exec(query).first()
    if revision is None:
        raise Invalid(
            f"节目单“{playlist.name}”没有第 {number} 版（最新为第 {playlist.current_revision} 版）。"
        )
    return revision


def check_selector(session: Session, selector: Selector) -> dict[str, Any]:
    """The selector as stored; unknown codes (from the targets service) or no endpoint reached: 422."""
    if count_reached(session, selector=selector) == 0:
        raise Invalid("选择范围内目前没有任何终端：请检查乡镇、村（社区）、标签或分组，或先添加终端。")
    return selector.model_dump(mode="json")
