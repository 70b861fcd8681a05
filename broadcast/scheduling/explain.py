""" "What will play here on day D, and why", and the conflict report shown when a campaign is submitted.

Pure: built on :mod:`broadcast.scheduling.compiler` output; no database, clock or network.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from broadcast.scheduling.compiler import (
    CampaignSpec,
    ClassId,
    ClassRundown,
    DropReason,
    QuietHours,
    Slot,
    compile_rundowns,
)
from broadcast.scheduling.presets import describe
from broadcast.scheduling.recurrence import SHANGHAI


@dataclass(frozen=True, slots=True)
class Explanation:
    """One line of the "why" view: a slot that plays or an occurrence that does not."""

    start: datetime
    campaign_id: int
    plays: bool
    text: str
    reason: DropReason | None = None
    by_campaign: int | None = None


@dataclass(frozen=True, slots=True)
class Collision:
    """Another campaign whose slots overlap the candidate's on shared classes."""

    campaign_id: int
    priority: int
    endpoints: int
    class_ids: tuple[ClassId, ...]
    times: tuple[datetime, ...]


def explain_day(
    rundown: ClassRundown,
    campaigns: Mapping[int, CampaignSpec],
    *,
    day: date,
    tz: tzinfo = SHANGHAI,
) -> list[Explanation]:
    """Everything that plays, moves or is dropped on one local day of a class, in time order."""
    lines = [
        _explain_slot(slot, campaigns, tz)
        for slot in rundown.slots
        if slot.start.astimezone(tz).date() == day
    ]
    for drop in rundown.drops:
        if drop.occurrence.astimezone(tz).date() != day:
            continue
        spec = campaigns[drop.campaign_id]
        by = "" if drop.by_campaign is None else f"（由 {_label(drop.by_campaign, campaigns)} 造成）"
        text = f"{_hm(drop.occurrence, tz)} {spec.label} 不播：{drop.detail}{by}"
        lines.append(Explanation(drop.occurrence, spec.id, False, text, drop.reason, drop.by_campaign))
    return sorted(lines, key=lambda line: (line.start, line.campaign_id, line.plays))


def _explain_slot(slot: Slot, campaigns: Mapping[int, CampaignSpec], tz: tzinfo) -> Explanation:
    spec = campaigns[slot.campaign_id]
    text = (
        f"{_hm(slot.start, tz)}-{_hm(slot.end, tz)} 播出 {spec.label}，"
        f"优先级 {spec.priority}，规则：{describe(spec.recurrence)}"
    )
    if slot.moved:
        holder = "" if slot.bumped_by is None else _label(slot.bumped_by, campaigns)
        text += f"；原定 {_hm(slot.occurrence, tz)} 被 {holder} 占用，顺延到时段 {slot.window} 内的空档"
    return Explanation(slot.start, spec.id, True, text, None, slot.bumped_by)


def conflict_report(
    candidate: CampaignSpec,
    others: Iterable[CampaignSpec],
    classes: Mapping[ClassId, QuietHours],
    class_sizes: Mapping[ClassId, int],
    *,
    window_start: datetime,
    window_end: datetime,
    tz: tzinfo = SHANGHAI,
) -> tuple[Collision, ...]:
    """Which campaigns collide with ``candidate``: overlapping wanted slots on shared classes.

    Each campaign is compiled alone (its slots as if nothing else played), then the candidate's
    slots are compared with each other campaign's on the classes both target. ``endpoints`` sums
    the sizes of those classes; ``times`` are the candidate's colliding slot starts in ``tz``.
    Sorted by endpoints reached (most first), then campaign id.
    """
    alone = _alone(candidate, classes, window_start, window_end, tz)
    report = []
    for other in sorted(others, key=lambda spec: spec.id):
        shared = candidate.classes & other.classes
        if other.id == candidate.id or not shared:
            continue
        theirs = _alone(other, classes, window_start, window_end, tz)
        hit_classes: set[ClassId] = set()
        times: set[datetime] = set()
        for class_id in shared:
            hits = _overlapping(alone[class_id], theirs[class_id])
            if hits:
                hit_classes.add(class_id)
                times.update(start.astimezone(tz) for start in hits)
        if hit_classes:
            endpoints = sum(class_sizes.get(class_id, 0) for class_id in hit_classes)
            report.append(
                Collision(
                    other.id, other.priority, endpoints, tuple(sorted(hit_classes)), tuple(sorted(times))
                )
            )
    return tuple(sorted(report, key=lambda item: (-item.endpoints, item.campaign_id)))


def _alone(
    spec: CampaignSpec, classes: Mapping[ClassId, QuietHours], start: datetime, end: datetime, tz: tzinfo
) -> dict[ClassId, tuple[Slot, ...]]:
    own = {class_id: classes[class_id] for class_id in spec.classes if class_id in classes}
    compiled = compile_rundowns([spec], own, window_start=start, window_end=end, tz=tz)
    return defaultdict(tuple, {rundown.class_id: rundown.slots for rundown in compiled.classes})


def _overlapping(mine: Sequence[Slot], theirs: Sequence[Slot]) -> list[datetime]:
    """Starts of my slots that overlap one of theirs (both lists sorted by start)."""
    hits, index = [], 0
    for slot in mine:
        while index < len(theirs) and theirs[index].end <= slot.start:
            index += 1
        if index < len(theirs) and theirs[index].start < slot.end:
            hits.append(slot.start)
    return hits


def _hm(at: datetime, tz: tzinfo) -> str:
    return f"{at.astimezone(tz):%H:%M}"


def _label(campaign_id: int, campaigns: Mapping[int, CampaignSpec]) -> str:
    spec = campaigns.get(campaign_id)
    return spec.label if spec is not None else f"计划 #{campaign_id}"
