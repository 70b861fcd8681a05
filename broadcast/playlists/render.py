"""The render planner: resolved playlist items in, the program's exact timeline out.

Pure: no database, clock, network or ffmpeg. The renderer writes exactly the samples this plan
describes, so the offsets in a manifest are the offsets a listener hears.
"""

from __future__ import annotations

from dataclasses import dataclass

from broadcast.playlists.models import ItemKind


@dataclass(frozen=True)
class ResolvedItem:
    """One playlist item with its audio already known (or a silence of a given length)."""

    position: int
    kind: ItemKind
    ref: int | None
    duration_ms: int
    repeat: int = 1
    audio_sha256: str | None = None


@dataclass(frozen=True)
class Segment:
    """One stretch of the program: a single play of one item."""

    position: int
    kind: ItemKind
    ref: int | None
    audio_sha256: str | None
    start_ms: int
    duration_ms: int
    item_pass: int
    playlist_pass: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


@dataclass(frozen=True)
class RenderPlan:
    segments: tuple[Segment, ...]
    duration_ms: int

    def audio_inputs(self) -> list[str]:
        """The distinct audio files the plan reads, in order of first use."""
        return list(dict.fromkeys(s.audio_sha256 for s in self.segments if s.audio_sha256))


class PlanError(ValueError):
    pass


def _check(items: list[ResolvedItem], playlist_repeat: int) -> None:
    if playlist_repeat < 1:
        raise PlanError("playlist repeat must be at least 1")
    if not any(item.kind != ItemKind.silence for item in items):
        raise PlanError("a program needs at least one audible item")
    for item in items:
        if item.repeat < 1 or item.duration_ms < 0:
            raise PlanError(f"item {item.position}: repeat must be >= 1 and duration_ms >= 0")
        if (item.kind == ItemKind.silence) != (item.audio_sha256 is None):
            raise PlanError(f"item {item.position}: silence has no audio, every other kind has one")


def plan_render(items: list[ResolvedItem], *, playlist_repeat: int = 1) -> RenderPlan:
    """Lay the items out back to back: each item `repeat` times, the whole list `playlist_repeat` times."""
    ordered = sorted(items, key=lambda item: item.position)
    _check(ordered, playlist_repeat)
    segments: list[Segment] = []
    offset_ms = 0
    for playlist_pass in range(1, playlist_repeat + 1):
        for item in ordered:
            for item_pass in range(1, item.repeat + 1):
                segments.append(
                    Segment(
                        position=item.position,
                        kind=item.kind,
                        ref=item.ref,
                        audio_sha256=item.audio_sha256,
                        start_ms=offset_ms,
                        duration_ms=item.duration_ms,
                        item_pass=item_pass,
                        playlist_pass=playlist_pass,
                    )
                )
                offset_ms += item.duration_ms
    return RenderPlan(segments=tuple(segments), duration_ms=offset_ms)
