"""The rundown compiler (播出单): campaigns + endpoint classes + a time window -> slots per class.

Pure: values in, values out; no database, clock or network.

**Classes, not endpoints.** Endpoints that carry the same campaigns and the same quiet hours get the
same rundown, so the compiler works per *class* of endpoints (grouped by
:func:`broadcast.scheduling.classes.plan_classes`; the demo city's 9,305 endpoints make a few hundred
classes). Work never scales with endpoints x campaigns; the caller copies a class's slots to its
endpoints when it stores them.

**Steps.**

1. *Expand once.* Each campaign's recurrence is expanded once for the window, whatever the number
   of classes (:func:`broadcast.scheduling.recurrence.expand_detailed`; its cost does not depend on
   the campaign's age). Occurrences removed by an exception day are reported as drops.
2. *Class-independent checks, once per campaign.* An occurrence must fall inside one of the
   campaign's daily broadcast windows (local time, e.g. 06:30-07:30) and the program must end by
   that window's end; otherwise it is dropped as ``outside_windows``.
3. *Quiet hours, once per campaign and distinct quiet hours.* A program that would start in or run
   into the class's quiet hours (e.g. 22:00-06:00, crossing midnight) is dropped as ``quiet_hours``.
4. *Placement, per class.* The class's candidates are taken in one total order: higher priority
   first, then earlier occurrence, then lower campaign id. Each candidate, in turn:

   - is dropped as ``max_plays`` if its campaign already has its daily maximum of slots on this
     class that local day;
   - is placed at its occurrence time if that time is free;
   - otherwise was bumped by the slot holding that time (necessarily of equal or higher priority,
     placed earlier in the order), and moves to the earliest free gap after its occurrence that
     still ends inside the same broadcast window of the same day and before any quiet hours
     (``moved=True``, ``bumped_by`` names that campaign); with no such gap it is dropped as
     ``bumped``, naming the campaign that holds its time.

**Guarantees.** Slots on one class never overlap; a lower-priority slot never holds time where a
higher-priority occurrence was dropped for a collision (it is placed later in the order); no slot
touches quiet hours or leaves its window; each campaign has at most its daily maximum of slots per
class per local day; the output is sorted and never depends on input order (campaigns are sorted
by id, classes by id, candidates by the total order above), so compiling twice gives equal
results and equal slot keys. A slot's natural key is (class, campaign, occurrence): the basis for
idempotent materialization (stored per endpoint as (endpoint, campaign, occurrence)).

**Windows.** Only occurrences inside [window_start, window_end) are compiled. Give whole local
days (:func:`local_days`) so the daily maximum and moves see whole days and successive windows
agree.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise

from broadcast.scheduling.recurrence import (
    SHANGHAI,
    Exclusion,
    Recurrence,
    SchedulingError,
    expand_detailed,
)

ClassId = str
Interval = tuple[datetime, datetime]


class CampaignSpecError(SchedulingError):
    """Invalid compiler input (windows, durations, classes); ``message`` is Chinese."""


def _parse_span(text: str) -> tuple[time, time]:
    start, sep, end = text.partition("-")
    try:
        if not sep:
            raise ValueError(text)
        return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    except ValueError as exc:
        raise CampaignSpecError(f"时段「{text}」无效，应写成 HH:MM-HH:MM，例如 06:30-07:30。") from exc


@dataclass(frozen=True, order=True, slots=True)
class BroadcastWindow:
    """A daily broadcast window in local time, start < end (it does not cross midnight)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise CampaignSpecError(f"播出时段 {self} 的结束须晚于开始，且不能跨越午夜。")

    @classmethod
    def parse(cls, text: str) -> BroadcastWindow:
        return cls(*_parse_span(text))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def on(self, day: date, tz: tzinfo) -> Interval:
        return datetime.combine(day, self.start, tz), datetime.combine(day, self.end, tz)


@dataclass(frozen=True, order=True, slots=True)
class QuietHours:
    """Daily quiet hours in local time; end <= start crosses midnight; start == end means none."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        return cls(*_parse_span(text))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def around(self, day: date, tz: tzinfo) -> tuple[Interval, ...]:
        """The quiet intervals that touch ``day`` (from the evening before to the next morning)."""
        return _quiet_spans(self, day, tz)


@lru_cache(maxsize=4096)
def _quiet_spans(quiet: QuietHours, day: date, tz: tzinfo) -> tuple[Interval, ...]:
    if quiet.start == quiet.end:
        return ()
    spans = []
    for offset in (-1, 0, 1):
        first = day + timedelta(days=offset)
        last = first if quiet.start < quiet.end else first + timedelta(days=1)
        start, end = datetime.combine(first, quiet.start, tz), datetime.combine(last, quiet.end, tz)
        spans.append((start.astimezone(UTC), end.astimezone(UTC)))  # UTC: same-zone comparisons are cheap
    return tuple(spans)


CITY_QUIET_HOURS = QuietHours(time(22), time(6))


@dataclass(frozen=True)
class CampaignSpec:
    """What the compiler needs of one approved campaign. ``classes`` are the classes it targets."""

    id: int
    priority: int
    recurrence: Recurrence
    windows: tuple[BroadcastWindow, ...]
    duration_ms: int
    max_plays_per_day: int
    classes: frozenset[ClassId]
    name: str = ""

    def __post_init__(self) -> None:
        label = self.label
        if self.duration_ms <= 0:
            raise CampaignSpecError(f"{label} 的节目时长必须大于 0 毫秒（当前 {self.duration_ms}）。")
        if self.max_plays_per_day < 1:
            raise CampaignSpecError(f"{label} 的每日最多播放次数至少为 1。")
        windows = tuple(sorted(set(self.windows)))
        if not windows:
            raise CampaignSpecError(f"{label} 至少需要一个播出时段，例如 06:30-07:30。")
        for before, after in pairwise(windows):
            if after.start < before.end:
                raise CampaignSpecError(f"{label} 的播出时段 {before} 与 {after} 重叠，请合并或调整。")
        object.__setattr__(self, "windows", windows)

    @property
    def label(self) -> str:
        return f"“{self.name}”（#{self.id}）" if self.name else f"计划 #{self.id}"


class DropReason(StrEnum):
    EXCEPTION_DAY = "exception_day"
    OUTSIDE_WINDOWS = "outside_windows"
    QUIET_HOURS = "quiet_hours"
    MAX_PLAYS = "max_plays"
    BUMPED = "bumped"


@dataclass(frozen=True, order=True, slots=True)
class SlotKey:
    """Natural key of a slot: stable across compilations of the same input."""

    class_id: ClassId
    campaign_id: int
    occurrence: datetime


@dataclass(frozen=True, slots=True)
class Slot:
    """A planned play on every endpoint of a class. Times are aware UTC."""

    class_id: ClassId
    campaign_id: int
    occurrence: datetime
    start: datetime
    end: datetime
    window: BroadcastWindow
    moved: bool = False
    bumped_by: int | None = None

    @property
    def key(self) -> SlotKey:
        return SlotKey(self.class_id, self.campaign_id, self.occurrence)


@dataclass(frozen=True, slots=True)
class Drop:
    """An occurrence that will not play on a class, why (``detail`` is Chinese), and by whom."""

    class_id: ClassId
    campaign_id: int
    occurrence: datetime
    reason: DropReason
    detail: str
    by_campaign: int | None = None


@dataclass(frozen=True, slots=True)
class ClassRundown:
    class_id: ClassId
    quiet: QuietHours
    slots: tuple[Slot, ...]
    drops: tuple[Drop, ...]


@dataclass(frozen=True, slots=True)
class Rundowns:
    """The compiled window: one rundown per class, sorted by class id."""

    window_start: datetime
    window_end: datetime
    classes: tuple[ClassRundown, ...]

    def get(self, class_id: ClassId) -> ClassRundown:
        for rundown in self.classes:
            if rundown.class_id == class_id:
                return rundown
        raise KeyError(class_id)


@dataclass(frozen=True, slots=True)
class _Candidate:
    campaign: CampaignSpec
    occurrence: datetime
    day: date
    window: BroadcastWindow
    window_end: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class _Prepared:
    candidates: tuple[_Candidate, ...]
    drops: tuple[tuple[datetime, DropReason, str], ...]


def local_days(first: date, days: int = 2, tz: tzinfo = SHANGHAI) -> tuple[datetime, datetime]:
    """A window of whole local days: [first 00:00, first + days 00:00) in ``tz``."""
    return datetime.combine(first, time(0), tz), datetime.combine(first + timedelta(days=days), time(0), tz)


def compile_rundowns(
    campaigns: Iterable[CampaignSpec],
    classes: Mapping[ClassId, QuietHours],
    *,
    window_start: datetime,
    window_end: datetime,
    tz: tzinfo = SHANGHAI,
) -> Rundowns:
    """Compile every class's rundown for [window_start, window_end) (see the module doc)."""
    specs = _checked(campaigns, classes)
    prepared = {
        spec.id: _prepare(spec, window_start=window_start, window_end=window_end, tz=tz) for spec in specs
    }
    by_class: dict[ClassId, list[CampaignSpec]] = defaultdict(list)
    for spec in specs:
        for class_id in spec.classes:
            by_class[class_id].append(spec)
    quiet_cache: dict[tuple[int, QuietHours], tuple[list[_Candidate], list[Drop]]] = {}
    rundowns = []
    for class_id in sorted(classes):
        quiet = classes[class_id]
        candidates: list[_Candidate] = []
        drops: list[Drop] = []
        for spec in by_class.get(class_id, []):
            drops.extend(Drop(class_id, spec.id, at, why, text) for at, why, text in prepared[spec.id].drops)
            key = (spec.id, quiet)
            if key not in quiet_cache:
                quiet_cache[key] = _outside_quiet(prepared[spec.id].candidates, quiet, tz)
            kept, quiet_drops = quiet_cache[key]
            candidates.extend(kept)
            drops.extend(_with_class(drop, class_id) for drop in quiet_drops)
        slots, placement_drops = _place(class_id, candidates, quiet, tz)
        drops.extend(placement_drops)
        drops.sort(key=lambda drop: (drop.occurrence, drop.campaign_id, drop.reason))
        rundowns.append(ClassRundown(class_id, quiet, slots, tuple(drops)))
    return Rundowns(window_start, window_end, tuple(rundowns))


def _checked(campaigns: Iterable[CampaignSpec], classes: Mapping[ClassId, QuietHours]) -> list[CampaignSpec]:
    specs = sorted(campaigns, key=lambda spec: spec.id)
    seen: set[int] = set()
    for spec in specs:
        if spec.id in seen:
            raise CampaignSpecError(f"计划 #{spec.id} 出现了两次。")
        seen.add(spec.id)
        unknown = sorted(spec.classes - set(classes))
        if unknown:
            raise CampaignSpecError(f"{spec.label} 指向未知的终端类别：{'、'.join(unknown[:3])}。")
    return specs


def _prepare(spec: CampaignSpec, *, window_start: datetime, window_end: datetime, tz: tzinfo) -> _Prepared:
    """Expand once and apply the class-independent checks (exception days, broadcast windows)."""
    expansion = expand_detailed(spec.recurrence, window_start=window_start, window_end=window_end)
    drops = [
        (
            item.at,
            DropReason.EXCEPTION_DAY,
            f"{item.at.astimezone(tz):%Y-%m-%d} 是例外日（节假日、考试日等），不播。",
        )
        for item in expansion.excluded
        if item.reason is Exclusion.EXCEPTION_DAY
    ]
    candidates = []
    duration = timedelta(milliseconds=spec.duration_ms)
    for at in expansion.occurrences:
        day = at.astimezone(tz).date()
        window = next((w for w in spec.windows if w.on(day, tz)[0] <= at < w.on(day, tz)[1]), None)
        if window is None:
            allowed = "、".join(str(w) for w in spec.windows)
            drops.append((at, DropReason.OUTSIDE_WINDOWS, f"{_hm(at, tz)} 不在播出时段（{allowed}）内。"))
        elif at + duration > window.on(day, tz)[1]:
            text = f"{_hm(at, tz)} 开始、时长 {_length(spec.duration_ms)} 的节目会超出播出时段 {window}。"
            drops.append((at, DropReason.OUTSIDE_WINDOWS, text))
        else:
            window_end = window.on(day, tz)[1].astimezone(UTC)
            candidates.append(_Candidate(spec, at, day, window, window_end, at + duration))
    return _Prepared(tuple(candidates), tuple(drops))


def _outside_quiet(
    candidates: Iterable[_Candidate], quiet: QuietHours, tz: tzinfo
) -> tuple[list[_Candidate], list[Drop]]:
    kept, drops = [], []
    for candidate in candidates:
        hit = next((s for s in quiet.around(candidate.day, tz) if _overlaps(s, candidate)), None)
        if hit is None:
            kept.append(candidate)
        else:
            text = f"{_hm(candidate.occurrence, tz)}-{_hm(candidate.end, tz)} 会进入静默时段 {quiet}。"
            drops.append(Drop("", candidate.campaign.id, candidate.occurrence, DropReason.QUIET_HOURS, text))
    return kept, drops


def _overlaps(span: Interval, candidate: _Candidate) -> bool:
    return span[0] < candidate.end and candidate.occurrence < span[1]


def _with_class(drop: Drop, class_id: ClassId) -> Drop:
    return Drop(class_id, drop.campaign_id, drop.occurrence, drop.reason, drop.detail, drop.by_campaign)


class _Timeline:
    """Non-overlapping busy intervals of one class, sorted (so starts and ends are both sorted)."""

    def __init__(self) -> None:
        self.starts: list[datetime] = []
        self.ends: list[datetime] = []
        self.owners: list[int] = []

    def holder(self, start: datetime, end: datetime) -> int | None:
        index = bisect_right(self.ends, start)
        if index < len(self.starts) and self.starts[index] < end:
            return self.owners[index]
        return None

    def first_gap(self, start: datetime, length: timedelta, limit: datetime) -> datetime | None:
        index = bisect_right(self.ends, start)
        while index < len(self.starts) and self.starts[index] < start + length:
            start = max(start, self.ends[index])
            index += 1
        return start if start + length <= limit else None

    def add(self, start: datetime, end: datetime, owner: int) -> None:
        index = bisect_left(self.starts, start)
        self.starts.insert(index, start)
        self.ends.insert(index, end)
        self.owners.insert(index, owner)


def _place(
    class_id: ClassId, candidates: list[_Candidate], quiet: QuietHours, tz: tzinfo
) -> tuple[tuple[Slot, ...], list[Drop]]:
    """Greedy placement in (priority desc, occurrence, campaign id) order (see the module doc)."""
    candidates.sort(key=lambda c: (-c.campaign.priority, c.occurrence, c.campaign.id))
    timeline = _Timeline()
    plays: Counter[tuple[int, date]] = Counter()
    slots: list[Slot] = []
    drops: list[Drop] = []
    for cand in candidates:
        spec = cand.campaign
        if plays[spec.id, cand.day] >= spec.max_plays_per_day:
            text = f"当天已安排 {spec.max_plays_per_day} 次，达到每日上限。"
            drops.append(Drop(class_id, spec.id, cand.occurrence, DropReason.MAX_PLAYS, text))
            continue
        length = cand.end - cand.occurrence
        holder = timeline.holder(cand.occurrence, cand.end)
        start = cand.occurrence
        if holder is not None:
            limit = min([cand.window_end] + [s for s, _ in quiet.around(cand.day, tz) if s >= cand.end])
            found = timeline.first_gap(cand.occurrence, length, limit)
            if found is None:
                text = (
                    f"{_hm(cand.occurrence, tz)} 已被计划 #{holder} 占用，播出时段 {cand.window} 内没有空档。"
                )
                drops.append(Drop(class_id, spec.id, cand.occurrence, DropReason.BUMPED, text, holder))
                continue
            start = found
        timeline.add(start, start + length, spec.id)
        plays[spec.id, cand.day] += 1
        slots.append(
            Slot(
                class_id,
                spec.id,
                cand.occurrence,
                start,
                start + length,
                cand.window,
                holder is not None,
                holder,
            )
        )
    slots.sort(key=lambda slot: (slot.start, slot.campaign_id))
    return tuple(slots), drops


def _hm(at: datetime, tz: tzinfo) -> str:
    return f"{at.astimezone(tz):%H:%M}"


def _length(duration_ms: int) -> str:
    minutes, seconds = divmod(round(duration_ms / 1000), 60)
    return f"{minutes} 分 {seconds} 秒" if minutes else f"{seconds} 秒"
