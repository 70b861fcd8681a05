"""The rundown compiler, rule by rule (table tests)."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

import pytest

import broadcast.scheduling.compiler as compiler_module
from broadcast.scheduling import (
    CITY_QUIET_HOURS,
    SHANGHAI,
    BroadcastWindow,
    CampaignSpec,
    CampaignSpecError,
    DropReason,
    QuietHours,
    Recurrence,
    Rundowns,
    Season,
    SlotKey,
    classify,
    compile_rundowns,
    daily_at,
    expand_detailed,
    local_days,
    plan_classes,
)

DAY = date(2026, 6, 1)
SEASON = Season(DAY, date(2026, 6, 30))
WINDOWS = tuple(BroadcastWindow.parse(text) for text in ("06:30-07:30", "12:00-12:30", "18:00-19:00"))
CLASSES = {"a": CITY_QUIET_HOURS}


def at(hhmm: str, day: date = DAY) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), SHANGHAI)


def campaign(
    cid: int,
    times: list[str],
    *,
    priority: int = 1,
    minutes: float = 5,
    max_plays: int = 3,
    classes: frozenset[str] = frozenset({"a"}),
    windows: tuple[BroadcastWindow, ...] = WINDOWS,
    rule: Recurrence | None = None,
) -> CampaignSpec:
    return CampaignSpec(
        id=cid,
        priority=priority,
        recurrence=rule or daily_at(times, season=SEASON),
        windows=windows,
        duration_ms=int(minutes * 60_000),
        max_plays_per_day=max_plays,
        classes=classes,
        name=f"计划{cid}",
    )


def compile_day(
    specs: list[CampaignSpec], classes: dict[str, QuietHours] = CLASSES, days: int = 1
) -> Rundowns:
    start, end = local_days(DAY, days)
    return compile_rundowns(specs, classes, window_start=start, window_end=end)


def starts(rundowns: Rundowns, class_id: str = "a") -> list[tuple[int, str, bool]]:
    return [
        (s.campaign_id, f"{s.start.astimezone(SHANGHAI):%H:%M}", s.moved)
        for s in rundowns.get(class_id).slots
    ]


def reasons(rundowns: Rundowns, class_id: str = "a") -> list[tuple[int, str, DropReason, int | None]]:
    return [
        (d.campaign_id, f"{d.occurrence.astimezone(SHANGHAI):%H:%M}", d.reason, d.by_campaign)
        for d in rundowns.get(class_id).drops
    ]


def test_occurrences_inside_windows_play_at_their_time() -> None:
    result = compile_day([campaign(1, ["06:40", "12:10", "18:20"])])
    assert starts(result) == [(1, "06:40", False), (1, "12:10", False), (1, "18:20", False)]
    slot = result.get("a").slots[0]
    assert slot.end - slot.start == timedelta(minutes=5)
    assert slot.key == SlotKey("a", 1, at("06:40"))
    assert slot.window == WINDOWS[0]


def test_outside_every_window_or_running_past_its_end_is_dropped() -> None:
    result = compile_day([campaign(1, ["09:00", "07:28", "12:28"], minutes=5)])
    assert starts(result) == []
    assert reasons(result) == [
        (1, "07:28", DropReason.OUTSIDE_WINDOWS, None),
        (1, "09:00", DropReason.OUTSIDE_WINDOWS, None),
        (1, "12:28", DropReason.OUTSIDE_WINDOWS, None),
    ]
    assert "超出播出时段 06:30-07:30" in result.get("a").drops[0].detail


def test_quiet_hours_hold_per_class_and_each_recurrence_expands_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = expand_detailed

    def counting(rule: Recurrence, **window: datetime):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(rule, **window)

    monkeypatch.setattr(compiler_module, "expand_detailed", counting)
    classes = {f"c{i}": CITY_QUIET_HOURS for i in range(20)} | {"late": QuietHours.parse("21:00-06:45")}
    spec = campaign(1, ["06:40", "18:20"], classes=frozenset(classes))
    result = compile_day([spec], classes)
    assert len(calls) == 1
    assert starts(result, "c0") == [(1, "06:40", False), (1, "18:20", False)]
    assert starts(result, "late") == [(1, "18:20", False)]
    assert reasons(result, "late") == [(1, "06:40", DropReason.QUIET_HOURS, None)]


def test_higher_priority_wins_and_the_bumped_slot_moves_to_the_next_gap_in_its_window() -> None:
    result = compile_day([campaign(1, ["06:40"], priority=1), campaign(2, ["06:42"], priority=5)])
    assert starts(result) == [(2, "06:42", False), (1, "06:47", True)]
    moved = result.get("a").slots[1]
    assert moved.bumped_by == 2
    assert moved.occurrence == at("06:40")


def test_bumped_without_a_free_gap_is_dropped_naming_the_winner() -> None:
    specs = [campaign(1, ["12:20"], priority=1), campaign(2, ["12:18"], priority=5, minutes=10)]
    result = compile_day(specs)
    assert starts(result) == [(2, "12:18", False)]
    assert reasons(result) == [(1, "12:20", DropReason.BUMPED, 2)]
    assert "计划 #2" in result.get("a").drops[0].detail


def test_equal_priority_ties_go_to_the_earlier_occurrence_then_the_lower_id() -> None:
    result = compile_day([campaign(3, ["06:40"]), campaign(2, ["06:40"]), campaign(1, ["06:42"])])
    assert starts(result) == [(2, "06:40", False), (3, "06:45", True), (1, "06:50", True)]


def test_a_moved_slot_never_runs_into_quiet_hours() -> None:
    evening = (BroadcastWindow.parse("21:00-22:00"),)
    specs = [
        campaign(1, ["21:00"], priority=9, minutes=20, windows=evening, classes=frozenset({"a", "b"})),
        campaign(2, ["21:10"], priority=1, minutes=15, windows=evening, classes=frozenset({"a", "b"})),
    ]
    classes = {"a": QuietHours.parse("21:30-06:00"), "b": CITY_QUIET_HOURS}
    result = compile_day(specs, classes)
    assert reasons(result, "a") == [(2, "21:10", DropReason.BUMPED, 1)]
    assert starts(result, "b") == [(1, "21:00", False), (2, "21:20", True)]


def test_max_plays_per_day_keeps_the_earliest() -> None:
    result = compile_day([campaign(1, ["06:40", "12:10", "18:20"], max_plays=2)], days=2)
    assert [slot for slot in starts(result) if slot[1] == "18:20"] == []
    assert len(result.get("a").slots) == 4
    assert [r[2] for r in reasons(result)] == [DropReason.MAX_PLAYS, DropReason.MAX_PLAYS]


def test_bumped_drops_do_not_count_towards_the_daily_maximum() -> None:
    specs = [campaign(1, ["12:20", "18:20"], max_plays=1), campaign(2, ["12:18"], priority=5, minutes=10)]
    assert starts(compile_day(specs)) == [(2, "12:18", False), (1, "18:20", False)]


def test_exception_days_are_reported_as_drops() -> None:
    rule = daily_at(["06:40"], season=SEASON, exception_days=frozenset({DAY}))
    result = compile_day([campaign(1, [], rule=rule)], days=2)
    assert starts(result) == [(1, "06:40", False)]
    assert reasons(result) == [(1, "06:40", DropReason.EXCEPTION_DAY, None)]
    assert "例外日" in result.get("a").drops[0].detail


def test_same_input_in_any_order_gives_the_same_rundowns() -> None:
    specs = [
        campaign(i, ["06:40", "12:10"], priority=i % 3, classes=frozenset({"a", "b"})) for i in range(1, 9)
    ]
    classes = {"a": CITY_QUIET_HOURS, "b": QuietHours.parse("22:00-06:45")}
    first = compile_day(specs, classes, days=2)
    rng = random.Random(7)
    for _ in range(5):
        shuffled = specs[:]
        rng.shuffle(shuffled)
        reordered = dict(sorted(classes.items(), key=lambda _: rng.random()))
        assert compile_day(shuffled, reordered, days=2) == first
    assert [rundown.class_id for rundown in first.classes] == ["a", "b"]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: campaign(1, ["06:40"], minutes=0), "节目时长必须大于 0"),
        (lambda: campaign(1, ["06:40"], max_plays=0), "每日最多播放次数至少为 1"),
        (lambda: campaign(1, ["06:40"], windows=()), "至少需要一个播出时段"),
        (
            lambda: campaign(1, ["06:40"], windows=(WINDOWS[0], BroadcastWindow.parse("07:00-08:00"))),
            "重叠",
        ),
        (lambda: BroadcastWindow.parse("19:00-18:00"), "不能跨越午夜"),
        (lambda: QuietHours.parse("22:00"), "HH:MM-HH:MM"),
        (lambda: compile_day([campaign(1, ["06:40"], classes=frozenset({"zz"}))]), "未知的终端类别"),
        (lambda: compile_day([campaign(1, ["06:40"]), campaign(1, ["07:00"])]), "出现了两次"),
    ],
)
def test_bad_compiler_input_is_refused(build: object, message: str) -> None:
    with pytest.raises(CampaignSpecError, match=message):
        build()  # type: ignore[operator]


def test_classify_groups_endpoints_by_campaigns_and_quiet_hours() -> None:
    late = QuietHours.parse("21:00-07:00")
    endpoint_campaigns = {
        10: frozenset({1, 2}),
        11: frozenset({2, 1}),
        12: frozenset({1}),
        13: frozenset({1, 2}),
    }
    endpoint_quiet = {10: CITY_QUIET_HOURS, 11: CITY_QUIET_HOURS, 12: CITY_QUIET_HOURS, 13: late}
    groups = classify(endpoint_campaigns, endpoint_quiet)
    assert sorted(groups.values()) == [[10, 11], [12], [13]]
    assert groups == classify(dict(reversed(endpoint_campaigns.items())), endpoint_quiet)
    plan = plan_classes(endpoint_campaigns, endpoint_quiet)
    assert len(plan.targets[1]) == 3
    assert len(plan.targets[2]) == 2
    with pytest.raises(CampaignSpecError, match="没有静默时段"):
        classify({1: frozenset()}, {})
