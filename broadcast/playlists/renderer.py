"""Execute a render plan: decode the inputs, lay the samples out exactly as planned, normalise.

Each distinct input is decoded once by ffmpeg to 16-bit PCM WAV at the house rate. The program
is then written as one intermediate WAV by copying those samples (and zeros for silence) in
one-second chunks: every segment gets exactly ``duration_ms * rate / 1000`` samples, so the
manifest's offsets are sample-exact and memory stays flat however long the program is. Finally
the content store's ``ingest_audio`` runs the two-pass loudnorm over the whole program and
stores it in the house format.
"""

from __future__ import annotations

import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from broadcast.config import Settings
from broadcast.content.audio import AudioError, run
from broadcast.playlists.models import ItemKind
from broadcast.playlists.render import RenderPlan, ResolvedItem, plan_render

SAMPLE_WIDTH = 2
CHUNK_FRAMES_S = 1
# A program longer than this is a mistake in the playlist (e.g. repeats multiplied), not a program.
PROGRAM_MAX_MS = 3 * 60 * 60 * 1000

Progress = Callable[[str], None]


class RenderFailed(AudioError):
    """The program could not be produced; the message says why in words an editor can act on."""


@dataclass(frozen=True)
class ItemSource:
    """A playlist item with its audio found (or made, for a bulletin) but not yet decoded."""

    position: int
    kind: ItemKind
    ref: int | None
    repeat: int
    audio_sha256: str | None = None
    silence_ms: int | None = None


@dataclass(frozen=True)
class Decoded:
    path: Path
    frames: int
    rate: int

    @property
    def duration_ms(self) -> int:
        return round(self.frames * 1000 / self.rate)


def decode_to_wav(source: Path, dest: Path, *, settings: Settings) -> Decoded:
    if not source.is_file():
        raise RenderFailed(
            f"素材音频文件 {source.stem[:12]}… 在存储中缺失，节目无法合成；请重新上传该素材后再合成",
            details={"missing": source.stem},
        )
    rate = settings.audio_sample_rate
    argv = [
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-protocol_whitelist", "file,pipe",
        "-y", "-i", str(source), "-map", "0:a:0", "-ac", "1", "-ar", str(rate),
        "-c:a", "pcm_s16le", "-f", "wav", str(dest),
    ]  # fmt: skip
    result = run(argv, timeout_s=settings.ffmpeg_timeout_s)
    if result.returncode != 0:
        raise RenderFailed(
            f"素材 {source.name} 无法解码，节目无法合成；请重新上传该素材",
            details={"ffmpeg": result.stderr.strip()[-500:]},
        )
    with wave.open(str(dest), "rb") as reader:
        return Decoded(path=dest, frames=reader.getnframes(), rate=reader.getframerate())


def decode_inputs(
    shas: list[str], *, path_for: Callable[[str], Path], workdir: Path, settings: Settings
) -> dict[str, Decoded]:
    return {
        sha: decode_to_wav(path_for(sha), workdir / f"{sha}.wav", settings=settings)
        for sha in dict.fromkeys(shas)
    }


def timed_items(sources: list[ItemSource], decoded: dict[str, Decoded]) -> list[ResolvedItem]:
    """The planner's input: every audible item timed by its decoded length, to the millisecond."""
    return [
        ResolvedItem(
            position=source.position,
            kind=source.kind,
            ref=source.ref,
            duration_ms=decoded[source.audio_sha256].duration_ms
            if source.audio_sha256
            else source.silence_ms or 0,
            repeat=source.repeat,
            audio_sha256=source.audio_sha256,
        )
        for source in sources
    ]


def checked_plan(items: list[ResolvedItem], *, playlist_repeat: int) -> RenderPlan:
    plan = plan_render(items, playlist_repeat=playlist_repeat)
    if plan.duration_ms > PROGRAM_MAX_MS:
        hours = PROGRAM_MAX_MS // 3_600_000
        raise RenderFailed(
            f"节目总时长 {plan.duration_ms / 60000:.0f} 分钟，超过上限 {hours} 小时；请减少重复次数或条目",
            details={"duration_ms": plan.duration_ms, "max_ms": PROGRAM_MAX_MS},
        )
    return plan


def _copy_frames(writer: wave.Wave_write, source: Decoded, frames: int) -> None:
    chunk = source.rate * CHUNK_FRAMES_S
    with wave.open(str(source.path), "rb") as reader:
        remaining = frames
        while remaining > 0:
            data = reader.readframes(min(chunk, remaining))
            if not data:
                break
            writer.writeframesraw(data)
            remaining -= len(data) // SAMPLE_WIDTH
    _write_silence(writer, remaining, rate=source.rate)


def _write_silence(writer: wave.Wave_write, frames: int, *, rate: int) -> None:
    chunk = rate * CHUNK_FRAMES_S
    while frames > 0:
        step = min(chunk, frames)
        writer.writeframesraw(b"\x00" * (step * SAMPLE_WIDTH))
        frames -= step


def frames_for(duration_ms: int, rate: int) -> int:
    return duration_ms * rate // 1000


def write_program(plan: RenderPlan, decoded: dict[str, Decoded], dest: Path, *, rate: int) -> Path:
    """Write the plan's samples back to back into one mono 16-bit WAV."""
    with wave.open(str(dest), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(SAMPLE_WIDTH)
        writer.setframerate(rate)
        for segment in plan.segments:
            frames = frames_for(segment.duration_ms, rate)
            if segment.audio_sha256 is None:
                _write_silence(writer, frames, rate=rate)
            else:
                _copy_frames(writer, decoded[segment.audio_sha256], frames)
    return dest


def build_program(
    sources: list[ItemSource],
    *,
    playlist_repeat: int,
    path_for: Callable[[str], Path],
    workdir: Path,
    settings: Settings,
    progress: Progress,
) -> tuple[RenderPlan, Path]:
    """Decode, plan and write the un-normalised program WAV into ``workdir``."""
    shas = [source.audio_sha256 for source in sources if source.audio_sha256]
    progress(f"解码 {len(set(shas))} 个素材")
    decoded = decode_inputs(shas, path_for=path_for, workdir=workdir, settings=settings)
    plan = checked_plan(timed_items(sources, decoded), playlist_repeat=playlist_repeat)
    progress(f"拼接 {len(plan.segments)} 段，共 {plan.duration_ms / 1000:.1f} 秒")
    wav = write_program(plan, decoded, workdir / "program.wav", rate=settings.audio_sample_rate)
    return plan, wav
