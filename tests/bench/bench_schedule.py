"""Rundown compiler on a city shaped like the demo: 9,305 endpoints, 50 active campaigns, 24 hours.

Rows:
- 24-hour rundowns for every class of endpoints, against the sum of the 50 campaigns' own
  expansions over the same window (each campaign expanded alone), measured in the same run;
- grouping the endpoints into classes (reported alone);
- expanding a 24-hour window of a campaign whose DTSTART is five years back, against the same
  rule starting today (the ratio should be about 1: cost does not depend on age).

The city is synthetic and deterministic (seeded): 29 towns, 278 villages of 15-60 endpoints,
village terrain decides endpoint tags, and some villages override the city's quiet hours.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from broadcast.scheduling import (
    CITY_QUIET_HOURS,
    SHANGHAI,
    BroadcastWindow,
    CampaignSpec,
    QuietHours,
    Recurrence,
    Season,
    compile_rundowns,
    daily_at,
    every_n_days,
    expand,
    expand_detailed,
    local_days,
    plan_classes,
    weekdays_at,
)
from tests.bench import Row, median_s

BENCHMARK = "schedule"
DAY = date(2026, 7, 15)
ENDPOINTS, VILLAGES, TOWNS, CAMPAIGNS = 9_305, 278, 29, 50
WINDOWS = tuple(BroadcastWindow.parse(text) for text in ("06:30-07:30", "12:00-12:30", "18:00-19:00"))
TERRAIN_TAGS = {
    "forest": ("forest",),
    "river": ("river", "school"),
    "reservoir": ("reservoir", "river"),
    "town": ("market", "school", "high_rise", "construction"),
    "industry": ("industrial_park", "construction", "highway"),
}
QUIET_OVERRIDES = (QuietHours.parse("21:00-06:30"), QuietHours.parse("22:30-06:00"))


@dataclass(frozen=True)
class Speaker:
    id: int
    town: int
    village: int
    tags: frozenset[str]


def _city(rng: random.Random) -> tuple[list[Speaker], dict[int, QuietHours]]:
    sizes = [rng.randint(15, 60) for _ in range(VILLAGES)]
    while sum(sizes) != ENDPOINTS:
        index = rng.randrange(VILLAGES)
        step = 1 if sum(sizes) < ENDPOINTS else -1
        if 15 <= sizes[index] + step <= 60:
            sizes[index] += step
    speakers: list[Speaker] = []
    quiet: dict[int, QuietHours] = {}
    for village, size in enumerate(sizes):
        terrain = rng.choice(sorted(TERRAIN_TAGS))
        override = rng.random() < 0.1
        for _ in range(size):
            tags = frozenset(tag for tag in TERRAIN_TAGS[terrain] if rng.random() < 0.4)
            speaker = Speaker(len(speakers) + 1, village % TOWNS, village, tags)
            speakers.append(speaker)
            quiet[speaker.id] = rng.choice(QUIET_OVERRIDES) if override else CITY_QUIET_HOURS
    return speakers, quiet


def _recurrence(rng: random.Random, cid: int) -> Recurrence:
    times = sorted({time(w.start.hour, w.start.minute + rng.randrange(0, 25, 5)) for w in WINDOWS})
    season = Season(DAY - timedelta(days=rng.randint(0, 365 * 3)), DAY + timedelta(days=rng.randint(10, 200)))
    kind = cid % 4
    if kind == 1:
        return weekdays_at(times[:2], season=season)
    if kind == 2:
        return every_n_days(1 + cid % 3, times, season=season)
    return daily_at(times, season=season)


def _selector(rng: random.Random, cid: int) -> tuple[str, frozenset[str], frozenset[int]]:
    """(kind, tags, towns): everyone, some tags, or some towns."""
    kind = ("all", "tags", "tags", "towns")[cid % 4]
    tags = frozenset(rng.sample(sorted({t for ts in TERRAIN_TAGS.values() for t in ts}), 2))
    towns = frozenset(rng.sample(range(TOWNS), rng.randint(2, 6)))
    return kind, tags, towns


def _reaches(selector: tuple[str, frozenset[str], frozenset[int]], speaker: Speaker) -> bool:
    kind, tags, towns = selector
    return (
        kind == "all"
        or (kind == "tags" and bool(tags & speaker.tags))
        or (kind == "towns" and speaker.town in towns)
    )


def _scenario() -> tuple[list[CampaignSpec], dict[str, QuietHours], int]:
    rng = random.Random(2026)
    speakers, quiet = _city(rng)
    selectors = {cid: _selector(rng, cid) for cid in range(1, CAMPAIGNS + 1)}
    # Town-wide campaigns run a short season each, so only a few are active on any day.
    active = {cid for cid, sel in selectors.items() if sel[0] != "towns" or cid % 3 == 0}
    endpoint_campaigns = {
        s.id: frozenset(cid for cid in active if _reaches(selectors[cid], s)) for s in speakers
    }
    plan = plan_classes(endpoint_campaigns, quiet)
    specs = [
        CampaignSpec(
            id=cid,
            priority=rng.randint(0, 9),
            recurrence=_recurrence(rng, cid),
            windows=WINDOWS,
            duration_ms=rng.randint(60, 300) * 1000,
            max_plays_per_day=rng.randint(2, 3),
            classes=plan.targets.get(cid, frozenset()),
            name=f"宣传计划 {cid}",
        )
        for cid in range(1, CAMPAIGNS + 1)
    ]
    return specs, dict(plan.quiet), len(speakers)


def run() -> list[Row]:
    specs, classes, endpoints = _scenario()
    start, end = local_days(DAY, 1)

    def compile_all() -> object:
        return compile_rundowns(specs, classes, window_start=start, window_end=end)

    def expand_each() -> object:
        return [expand_detailed(spec.recurrence, window_start=start, window_end=end) for spec in specs]

    compiled = compile_rundowns(specs, classes, window_start=start, window_end=end)
    slots = sum(len(rundown.slots) for rundown in compiled.classes)
    assert len(compiled.classes) == len(classes)
    assert slots > 0
    rows = [
        Row(
            BENCHMARK,
            f"24 h rundowns: {endpoints} endpoints in {len(classes)} classes, {len(specs)} campaigns, "
            f"{slots} class slots vs sum of {len(specs)} expansions",
            median_s(compile_all, runs=7),
            median_s(expand_each, runs=7),
        ),
        Row(BENCHMARK, f"group {endpoints} endpoints into classes", _classify_time()),
    ]
    rows.append(_age_row(start, end))
    return rows


def _classify_time() -> float:
    rng = random.Random(2026)
    speakers, quiet = _city(rng)
    selectors = {cid: _selector(rng, cid) for cid in range(1, CAMPAIGNS + 1)}
    endpoint_campaigns = {
        s.id: frozenset(c for c in selectors if _reaches(selectors[c], s)) for s in speakers
    }
    return median_s(lambda: plan_classes(endpoint_campaigns, quiet), runs=5)


def _age_row(start: datetime, end: datetime) -> Row:
    text = "FREQ=DAILY;BYHOUR=6,12,18;BYMINUTE=10,20,40;BYSETPOS=3,4,8"
    today = Recurrence(dtstart=datetime.combine(DAY, time(6, 40), SHANGHAI), rrule=text)
    old = Recurrence(
        dtstart=datetime.combine(DAY.replace(year=DAY.year - 5), time(6, 40), SHANGHAI), rrule=text
    )
    assert expand(old, window_start=start, window_end=end) == expand(
        today, window_start=start, window_end=end
    )

    def repeat(rule: Recurrence) -> float:
        return (
            median_s(lambda: [expand(rule, window_start=start, window_end=end) for _ in range(100)], runs=7)
            / 100
        )

    return Row(BENCHMARK, "expand 24 h: DTSTART five years back vs today", repeat(old), repeat(today))
