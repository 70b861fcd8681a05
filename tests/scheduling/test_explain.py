"""The "why" view and the conflict report."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from broadcast.scheduling import (
    CITY_QUIET_HOURS,
    SHANGHAI,
    BroadcastWindow,
    CampaignSpec,
    DropReason,
    QuietHours,
    Season,
    compile_rundowns,
    conflict_report,
    daily_at,
    explain_day,
    local_days,
)

DAY = date(2026, 6, 1)
WINDOWS = (BroadcastWindow(time(6, 30), time(7, 30)), BroadcastWindow(time(18), time(19)))
CLASSES = {"forest": CITY_QUIET_HOURS, "river": CITY_QUIET_HOURS, "late": QuietHours(time(21), time(7))}
SIZES = {"forest": 120, "river": 40, "late": 7}


def spec(
    cid: int, name: str, times: list[str], priority: int, classes: set[str], minutes: int = 5
) -> CampaignSpec:
    return CampaignSpec(
        id=cid,
        priority=priority,
        recurrence=daily_at(times, season=Season(DAY, DAY + timedelta(days=30))),
        windows=WINDOWS,
        duration_ms=minutes * 60_000,
        max_plays_per_day=2,
        classes=frozenset(classes),
        name=name,
    )


FIRE = spec(1, "森林防火", ["06:40", "18:20"], 5, {"forest", "late"})
FLOOD = spec(2, "防汛", ["06:42", "18:50"], 9, {"river", "forest", "late"})
DROWN = spec(3, "防溺水", ["06:45"], 1, {"river"})


def test_explain_day_tells_what_plays_and_why() -> None:
    start, end = local_days(DAY, 1)
    rundowns = compile_rundowns([FIRE, FLOOD, DROWN], CLASSES, window_start=start, window_end=end)
    campaigns = {c.id: c for c in (FIRE, FLOOD, DROWN)}
    lines = explain_day(rundowns.get("forest"), campaigns, day=DAY)
    texts = [line.text for line in lines]
    assert texts[0].startswith("06:42-06:47 播出 “防汛”（#2），优先级 9，规则：每天 06:42、18:50")
    assert texts[1].startswith("06:47-06:52 播出 “森林防火”（#1）")
    assert "原定 06:40 被 “防汛”（#2） 占用" in texts[1]
    late = explain_day(rundowns.get("late"), campaigns, day=DAY)
    quiet = [line for line in late if not line.plays]
    assert {line.reason for line in quiet} == {DropReason.QUIET_HOURS}
    assert "静默时段 21:00-07:00" in quiet[0].text
    assert explain_day(rundowns.get("forest"), campaigns, day=DAY + timedelta(days=1)) == []


def test_conflict_report_names_campaigns_endpoints_and_times() -> None:
    start, end = local_days(DAY, 1)
    report = conflict_report(FIRE, [FLOOD, DROWN], CLASSES, SIZES, window_start=start, window_end=end)
    assert [(c.campaign_id, c.endpoints, c.class_ids) for c in report] == [(2, 120, ("forest",))]
    assert report[0].times == (datetime(2026, 6, 1, 6, 40, tzinfo=SHANGHAI),)
    assert report[0].priority == 9
    flood = conflict_report(FLOOD, [FIRE, DROWN], CLASSES, SIZES, window_start=start, window_end=end)
    assert [(c.campaign_id, c.endpoints) for c in flood] == [(1, 120), (3, 40)]
    drowning = conflict_report(DROWN, [FIRE, FLOOD], CLASSES, SIZES, window_start=start, window_end=end)
    assert [(c.campaign_id, c.endpoints, c.class_ids) for c in drowning] == [(2, 40, ("river",))]
