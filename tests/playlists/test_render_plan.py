"""The render planner as a table of cases: items and repeats in, offsets and total out."""

from __future__ import annotations

import pytest

from broadcast.playlists.models import ItemKind
from broadcast.playlists.render import PlanError, ResolvedItem, plan_render

A = "a" * 64
B = "b" * 64


def clip(position: int, duration_ms: int, repeat: int = 1, sha: str = A) -> ResolvedItem:
    return ResolvedItem(position, ItemKind.clip, 10 + position, duration_ms, repeat, sha)


def silence(position: int, duration_ms: int, repeat: int = 1) -> ResolvedItem:
    return ResolvedItem(position, ItemKind.silence, None, duration_ms, repeat, None)


def chime(position: int, duration_ms: int) -> ResolvedItem:
    return ResolvedItem(position, ItemKind.chime, 1, duration_ms, 1, B)


CASES = [
    pytest.param([clip(1, 1000)], 1, [(1, 0, 1000, 1, 1)], 1000, id="one clip"),
    pytest.param(
        [chime(1, 1500), clip(2, 4000), silence(3, 500), chime(4, 1200)],
        1,
        [(1, 0, 1500, 1, 1), (2, 1500, 4000, 1, 1), (3, 5500, 500, 1, 1), (4, 6000, 1200, 1, 1)],
        7200,
        id="chime clip silence chime",
    ),
    pytest.param(
        [clip(1, 700, repeat=3)],
        1,
        [(1, 0, 700, 1, 1), (1, 700, 700, 2, 1), (1, 1400, 700, 3, 1)],
        2100,
        id="item repeat",
    ),
    pytest.param(
        [clip(1, 1000), silence(2, 250)],
        2,
        [(1, 0, 1000, 1, 1), (2, 1000, 250, 1, 1), (1, 1250, 1000, 1, 2), (2, 2250, 250, 1, 2)],
        2500,
        id="playlist repeat",
    ),
    pytest.param(
        [clip(2, 300, repeat=2), chime(1, 100)],
        2,
        [
            (1, 0, 100, 1, 1),
            (2, 100, 300, 1, 1),
            (2, 400, 300, 2, 1),
            (1, 700, 100, 1, 2),
            (2, 800, 300, 1, 2),
            (2, 1100, 300, 2, 2),
        ],
        1400,
        id="ordered by position, both repeats",
    ),
]


@pytest.mark.parametrize(("items", "playlist_repeat", "expected", "total_ms"), CASES)
def test_plan_lays_items_back_to_back(
    items: list[ResolvedItem],
    playlist_repeat: int,
    expected: list[tuple[int, int, int, int, int]],
    total_ms: int,
) -> None:
    plan = plan_render(items, playlist_repeat=playlist_repeat)

    got = [(s.position, s.start_ms, s.duration_ms, s.item_pass, s.playlist_pass) for s in plan.segments]
    assert got == expected
    assert plan.duration_ms == total_ms
    assert plan.segments[-1].end_ms == total_ms


def test_plan_is_deterministic_and_lists_distinct_inputs_in_first_use_order() -> None:
    items = [chime(1, 100), clip(2, 200), chime(3, 100), clip(4, 50, sha=A)]

    first = plan_render(items, playlist_repeat=3)

    assert first == plan_render(list(reversed(items)), playlist_repeat=3)
    assert first.audio_inputs() == [B, A]


@pytest.mark.parametrize(
    ("items", "playlist_repeat"),
    [
        pytest.param([], 1, id="empty"),
        pytest.param([silence(1, 1000)], 1, id="only silence"),
        pytest.param([clip(1, 1000)], 0, id="playlist repeat 0"),
        pytest.param([clip(1, 1000, repeat=0)], 1, id="item repeat 0"),
        pytest.param([ResolvedItem(1, ItemKind.clip, 1, 1000, 1, None)], 1, id="clip without audio"),
    ],
)
def test_plan_refuses_impossible_programs(items: list[ResolvedItem], playlist_repeat: int) -> None:
    with pytest.raises(PlanError):
        plan_render(items, playlist_repeat=playlist_repeat)
