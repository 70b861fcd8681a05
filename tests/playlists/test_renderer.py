"""Executing a plan: the program's samples sit exactly where the manifest says they do."""

from __future__ import annotations

import wave
from pathlib import Path

from broadcast.config import Settings
from broadcast.playlists.models import ItemKind
from broadcast.playlists.renderer import ItemSource, build_program
from tests.playlists.conftest import recording

A, B = "a" * 64, "b" * 64


def _samples(path: Path) -> tuple[int, bytes]:
    with wave.open(str(path), "rb") as reader:
        return reader.getframerate(), reader.readframes(reader.getnframes())


def test_program_samples_match_the_plan(tmp_path: Path, settings: Settings) -> None:
    inputs = {
        A: recording(tmp_path / "a.wav", seconds=1.2345, rate=44100),
        B: recording(tmp_path / "b.mp3", seconds=0.5, rate=24000),
    }
    sources = [
        ItemSource(position=1, kind=ItemKind.clip, ref=1, repeat=2, audio_sha256=A),
        ItemSource(position=2, kind=ItemKind.silence, ref=None, repeat=1, silence_ms=250),
        ItemSource(position=3, kind=ItemKind.chime, ref=2, repeat=1, audio_sha256=B),
    ]

    plan, wav = build_program(
        sources,
        playlist_repeat=2,
        path_for=inputs.__getitem__,
        workdir=tmp_path,
        settings=settings,
        progress=print,
    )

    rate, data = _samples(wav)
    assert rate == 48000
    assert len(data) // 2 == plan.duration_ms * 48
    clip_ms = plan.segments[0].duration_ms
    assert abs(clip_ms - 1234.5) <= 1
    assert [s.start_ms for s in plan.segments[:4]] == [0, clip_ms, 2 * clip_ms, 2 * clip_ms + 250]
    silence = plan.segments[2]
    assert silence.kind == ItemKind.silence
    start, end = silence.start_ms * 48 * 2, silence.end_ms * 48 * 2
    assert set(data[start:end]) == {0}
    assert any(data[end : end + 4800])
    assert plan.duration_ms == 2 * (2 * clip_ms + 250 + plan.segments[3].duration_ms)
