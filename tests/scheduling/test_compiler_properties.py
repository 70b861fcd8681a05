"""Hypothesis properties of the compiler: no overlap, priority, quiet hours, windows, daily maximum,
determinism and stable slot keys."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broadcast.scheduling import (
    SHANGHAI,
    BroadcastWindow,
    CampaignSpec,
    DropReason,
    QuietHours,
    Rundowns,
    Season,
    compile_rundowns,
    daily_at,
    expand,
    local_days,
)

DAY = date(2026, 6, 1)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WINDOW_CHOICES = [
    BroadcastWindow(time(6, 30), time(7, 30)),
    BroadcastWindow(time(12), time(12, 30)),
    BroadcastWindow(time(18), time(19)),
    BroadcastWindow(time(21), time(23)),
]
QUIET_CHOICES = [
    QuietHours(time(22), time(6)),
    QuietHours(time(21, 30), time(7)),
    QuietHours(time(12, 15), time(12, 20)),
]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[CampaignSpec], dict[str, QuietHours]]:
    classes = {f"k{i}": draw(st.sampled_from(QUIET_CHOICES)) for i in range(draw(st.integers(1, 3)))}
    specs = []
    for cid in range(1, draw(st.integers(1, 7)) + 1):
        clock = draw(st.lists(st.integers(5 * 60, 23 * 60 - 1), min_size=1, max_size=5, unique=True))
        targets = draw(st.lists(st.sampled_from(sorted(classes)), min_size=1, unique=True))
        windows = draw(st.lists(st.sampled_from(WINDOW_CHOICES), min_size=1, unique=True))
        specs.append(
            CampaignSpec(
                id=cid,
                priority=draw(st.integers(0, 3)),
                recurrence=daily_at(
                    [time(m // 60, m % 60) for m in clock], season=Season(DAY, DAY + timedelta(days=5))
                ),
                windows=tuple(windows),
                duration_ms=draw(st.integers(30, 20 * 60)) * 1000,
                max_plays_per_day=draw(st.integers(1, 4)),
                classes=frozenset(targets),
            )
        )
    return specs, classes


def compile_two_days(specs: list[CampaignSpec], classes: dict[str, QuietHours]) -> Rundowns:
    start, end = local_days(DAY, 2)
    return compile_rundowns(specs, classes, window_start=start, window_end=end)


@PROPERTY
@given(scenario=scenarios())
def test_slots_never_overlap_and_stay_in_their_window_outside_quiet_hours(
    scenario: tuple[list[CampaignSpec], dict[str, QuietHours]],
) -> None:
    specs, classes = scenario
    for rundown in compile_two_days(specs, classes).classes:
        for before, after in zip(rundown.slots, rundown.slots[1:], strict=False):
            assert before.end <= after.start
        for slot in rundown.slots:
            day = slot.start.astimezone(SHANGHAI).date()
            window_start, window_end = slot.window.on(day, SHANGHAI)
            assert window_start <= slot.occurrence <= slot.start
            assert slot.end <= window_end
            assert slot.moved == (slot.start != slot.occurrence)
            for quiet_start, quiet_end in rundown.quiet.around(day, SHANGHAI):
                assert slot.end <= quiet_start or slot.start >= quiet_end


@PROPERTY
@given(scenario=scenarios())
def test_priority_and_daily_maximum_are_respected(
    scenario: tuple[list[CampaignSpec], dict[str, QuietHours]],
) -> None:
    specs, classes = scenario
    by_id = {spec.id: spec for spec in specs}
    for rundown in compile_two_days(specs, classes).classes:
        for drop in rundown.drops:
            if drop.reason is not DropReason.BUMPED:
                continue
            loser = by_id[drop.campaign_id]
            end = drop.occurrence + timedelta(milliseconds=loser.duration_ms)
            assert drop.by_campaign is not None
            assert by_id[drop.by_campaign].priority >= loser.priority
            for slot in rundown.slots:
                if slot.start < end and drop.occurrence < slot.end:
                    assert by_id[slot.campaign_id].priority >= loser.priority
        per_day = Counter(
            (slot.campaign_id, slot.start.astimezone(SHANGHAI).date()) for slot in rundown.slots
        )
        for (cid, _), plays in per_day.items():
            assert plays <= by_id[cid].max_plays_per_day


@PROPERTY
@given(scenario=scenarios(), seed=st.integers(0, 1000))
def test_determinism_and_stable_keys(
    scenario: tuple[list[CampaignSpec], dict[str, QuietHours]], seed: int
) -> None:
    specs, classes = scenario
    first = compile_two_days(specs, classes)
    rng = random.Random(seed)
    shuffled = specs[:]
    rng.shuffle(shuffled)
    reordered = dict(sorted(classes.items(), key=lambda _: rng.random()))
    again = compile_two_days(shuffled, reordered)
    assert again == first
    keys = [slot.key for rundown in first.classes for slot in rundown.slots]
    assert len(keys) == len(set(keys))
    assert keys == [slot.key for rundown in again.classes for slot in rundown.slots]


@PROPERTY
@given(scenario=scenarios())
def test_every_occurrence_is_accounted_for_once_per_class(
    scenario: tuple[list[CampaignSpec], dict[str, QuietHours]],
) -> None:
    specs, classes = scenario
    start, end = local_days(DAY, 2)
    for rundown in compile_two_days(specs, classes).classes:
        seen = Counter((s.campaign_id, s.occurrence) for s in rundown.slots)
        seen.update((d.campaign_id, d.occurrence) for d in rundown.drops)
        expected = {
            (spec.id, moment)
            for spec in specs
            if rundown.class_id in spec.classes
            for moment in expand(spec.recurrence, window_start=start, window_end=end)
        }
        assert set(seen) == expected
        assert set(seen.values()) <= {1}
