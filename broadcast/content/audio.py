"""Probing, loudness measurement and transcoding to the house format, all through ffmpeg.

House format
------------
Everything the store holds, and everything a speaker is sent, is **MP3 (libmp3lame), mono,
48 kHz, constant bit rate** (``audio_bitrate_kbps``, default 128 kb/s), loudness-normalised to
``loudness_target_lufs`` (default -16 LUFS integrated) with the true peak at most
``true_peak_max_dbtp`` (default -1.5 dBTP) and a loudness range target of ``loudness_range_lu``.

Why this format, for outdoor IP speakers:

- MP3 is the one codec every networked horn speaker and SIP/IP amplifier decodes; Opus and AAC
  are not universal in that hardware.
- Mono: one horn per speaker, and speech is mono; stereo would only double the bytes.
- 48 kHz is stated explicitly because ``loudnorm`` resamples to 192 kHz internally and would
  otherwise write that rate out.
- CBR makes byte offsets proportional to time, so HTTP Range requests and seeking land on the
  right second without an index; 128 kb/s is transparent for speech and chimes.
- -16 LUFS / -1.5 dBTP is loud enough for speech outdoors and leaves headroom for the MP3
  encoder's inter-sample overshoot; EBU R128's -23 LUFS is meant for indoor broadcast.

Normalisation is two-pass: pass 1 measures (``loudnorm`` with ``print_format=json``), pass 2
applies ``loudnorm`` with the ``measured_*`` values and ``linear=true``: a plain gain that keeps
the dynamics. ``loudnorm`` silently falls back to dynamic (compressing) mode when the input is
shorter than its 3 s window or when the gain would push the true peak over the limit; in those
cases we apply the gain ourselves followed by a limiter running at four times the sample rate
(a true-peak approximation), then re-measure the encoded result and correct a residual error.

Every subprocess: an argv list (no shell), ``-nostdin``, ``-protocol_whitelist file,pipe`` (so a
crafted playlist file cannot make ffmpeg fetch URLs) and a timeout. Callers run these functions
off the event loop (plain ``def`` routes run in FastAPI's threadpool).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broadcast.config import Settings
from broadcast.errors import Invalid

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
HOUSE_CODEC = "mp3"
HOUSE_CHANNELS = 1
HOUSE_MEDIA_TYPE = "audio/mpeg"
DEFAULT_TIMEOUT_S = 600.0
# loudnorm's analysis window: below this, it cannot run in linear mode (ffmpeg < 6).
LOUDNORM_MIN_LINEAR_S = 3.5
SILENCE_LUFS = -70.0
# Head room kept below the true-peak ceiling for the limiter, since MP3 encoding overshoots.
LIMITER_MARGIN_DB = 0.5
CORRECTION_TOLERANCE_LU = 0.5
_BASE = (FFMPEG, "-nostdin", "-hide_banner", "-protocol_whitelist", "file,pipe")
_JSON_BLOCK = re.compile(r"\{[^{}]*\}", re.DOTALL)


class AudioError(Invalid):
    """ffmpeg could not read or convert the audio: the input is at fault, not the server."""


@dataclass(frozen=True)
class Stream:
    codec_type: str
    codec_name: str
    sample_rate: int | None
    channels: int | None


@dataclass(frozen=True)
class Probe:
    format_name: str
    duration_ms: int | None
    streams: tuple[Stream, ...]
    # ffprobe guessed the duration from the bit rate (MP3 without a Xing/Info header): a
    # truncated file then looks as long as it is, and a VBR file may look longer than it is.
    duration_estimated: bool = False

    @property
    def audio_streams(self) -> tuple[Stream, ...]:
        return tuple(s for s in self.streams if s.codec_type == "audio")

    @property
    def video_streams(self) -> tuple[Stream, ...]:
        # Cover art in MP3/M4A files is a single still picture, not video.
        return tuple(s for s in self.streams if s.codec_type == "video" and s.codec_name not in _COVER_ART)


_COVER_ART = frozenset({"mjpeg", "png", "bmp", "gif"})


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float
    true_peak_dbtp: float
    lra_lu: float
    threshold_lufs: float

    @property
    def is_silent(self) -> bool:
        return self.integrated_lufs <= SILENCE_LUFS


def run(argv: list[str], *, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run ffmpeg/ffprobe; a timeout or a missing binary becomes an error a person can act on."""
    try:
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioError(
            f"音频处理超时（超过 {timeout_s:g} 秒），请检查文件是否损坏或过长",
            details={"timeout_s": timeout_s},
        ) from exc
    except FileNotFoundError as exc:
        raise RuntimeError(f"找不到 {argv[0]}：请安装 ffmpeg（apt-get install -y ffmpeg）") from exc


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def probe(path: Path, *, timeout_s: float) -> Probe:
    """Container, duration and streams as ffprobe reports them (the authority, not the name)."""
    argv = [
        FFPROBE,
        "-v",
        "warning",
        "-protocol_whitelist",
        "file,pipe",
        "-show_entries",
        "format=format_name,duration:stream=codec_type,codec_name,sample_rate,channels",
        "-of",
        "json",
        _file_url(path),
    ]
    result = run(argv, timeout_s=timeout_s)
    if result.returncode != 0:
        raise AudioError(
            "无法识别的音频文件：ffprobe 读取失败，请上传 mp3、wav、ogg/opus、m4a/aac、flac 或 amr 录音",
            details={"ffprobe": _tail(result.stderr)},
        )
    data = json.loads(result.stdout or "{}")
    fmt = data.get("format", {})
    duration = fmt.get("duration")
    streams = tuple(
        Stream(
            codec_type=s.get("codec_type", ""),
            codec_name=s.get("codec_name", ""),
            sample_rate=_int_or_none(s.get("sample_rate")),
            channels=_int_or_none(s.get("channels")),
        )
        for s in data.get("streams", [])
    )
    return Probe(
        format_name=fmt.get("format_name", ""),
        duration_ms=round(float(duration) * 1000) if duration not in (None, "N/A") else None,
        streams=streams,
        duration_estimated="Estimating duration from bitrate" in result.stderr,
    )


def _file_url(path: Path) -> str:
    """An explicit ``file:`` URL, so a name like ``http:x`` or ``-y`` is never read as anything else."""
    return f"file:{path.absolute()}"


def _tail(stderr: str, lines: int = 6) -> str:
    return "\n".join(stderr.strip().splitlines()[-lines:])


def _float(value: str) -> float:
    number = float(value)
    if math.isinf(number):
        return SILENCE_LUFS if number < 0 else 99.0
    return number


def _decode_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("[error]", "[fatal]"))]


def _loudnorm_json(stderr: str) -> dict[str, str]:
    blocks = _JSON_BLOCK.findall(stderr)
    if not blocks:
        raise AudioError("无法测量响度：ffmpeg 没有输出测量结果", details={"ffmpeg": _tail(stderr)})
    parsed: dict[str, str] = json.loads(blocks[-1])
    return parsed


def _analyse(
    path: Path, *, settings: Settings | None, timeout_s: float, max_s: float | None = None
) -> Loudness:
    target = _loudnorm_target(settings)
    argv = [
        *_BASE,
        "-loglevel",
        "level+info",
        "-i",
        _file_url(path),
        *_limit(max_s),
        "-map",
        "0:a:0",
        "-af",
        f"{_prefilter(settings)},loudnorm={target}:print_format=json",
        "-f",
        "null",
        "-",
    ]
    result = run(argv, timeout_s=timeout_s)
    errors = _decode_errors(result.stderr)
    if result.returncode != 0 or errors:
        raise AudioError(
            "音频无法完整解码（文件可能被截断或已损坏），请重新导出或重新录制后上传",
            details={"ffmpeg": "\n".join(errors[-6:]) or _tail(result.stderr)},
        )
    data = _loudnorm_json(result.stderr)
    return Loudness(
        integrated_lufs=_float(data["input_i"]),
        true_peak_dbtp=_float(data["input_tp"]),
        lra_lu=_float(data["input_lra"]),
        threshold_lufs=_float(data["input_thresh"]),
    )


def measure_loudness(path: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Loudness:
    """Integrated loudness, true peak and loudness range of the first audio stream (mono downmix).

    Raises AudioError when the stream does not decode cleanly (truncated or corrupt files).
    """
    return _analyse(path, settings=None, timeout_s=timeout_s)


def _prefilter(settings: Settings | None) -> str:
    rate = settings.audio_sample_rate if settings else 48000
    # A fixed float format: swr scales a downmix to integer samples by -3 dB to avoid clipping,
    # so without it pass 1 and pass 2 could hear different mono signals.
    return f"aresample={rate},aformat=sample_fmts=dbl:channel_layouts=mono"


def _loudnorm_target(settings: Settings | None) -> str:
    if settings is None:
        return "I=-16:TP=-1.5:LRA=11"
    return (
        f"I={settings.loudness_target_lufs}:TP={settings.true_peak_max_dbtp}:LRA={settings.loudness_range_lu}"
    )


def _linear_possible(measured: Loudness, duration_s: float, settings: Settings) -> bool:
    gain = settings.loudness_target_lufs - measured.integrated_lufs
    return (
        duration_s >= LOUDNORM_MIN_LINEAR_S
        and 0 < measured.lra_lu <= settings.loudness_range_lu
        and measured.true_peak_dbtp + gain <= settings.true_peak_max_dbtp - 0.2
        and not measured.is_silent
    )


def _linear_filter(measured: Loudness, settings: Settings) -> str:
    return (
        f"loudnorm={_loudnorm_target(settings)}"
        f":measured_I={measured.integrated_lufs}:measured_TP={measured.true_peak_dbtp}"
        f":measured_LRA={measured.lra_lu}:measured_thresh={measured.threshold_lufs}"
        f":linear=true,aresample={settings.audio_sample_rate}"
    )


def _gain_limiter_filter(gain_db: float, settings: Settings) -> str:
    """Plain gain, then a look-ahead limiter at 4x the rate so inter-sample peaks are caught."""
    ceiling = 10 ** ((settings.true_peak_max_dbtp - LIMITER_MARGIN_DB) / 20)
    rate = settings.audio_sample_rate
    return (
        f"volume={gain_db:.2f}dB,aresample={rate * 4},"
        f"alimiter=limit={ceiling:.4f}:attack=2:release=50:level=false:latency=true,"
        f"aresample={rate}"
    )


def _limit(max_s: float | None) -> list[str]:
    return ["-t", f"{max_s:g}"] if max_s else []


def _encode(source: Path, dest: Path, audio_filter: str, *, settings: Settings, max_s: float | None) -> None:
    argv = [
        *_BASE,
        "-v",
        "error",
        "-y",
        "-i",
        _file_url(source),
        *_limit(max_s),
        "-map",
        "0:a:0",
        "-vn",
        "-sn",
        "-dn",
        "-map_metadata",
        "-1",
        "-af",
        f"{_prefilter(settings)},{audio_filter}",
        "-ar",
        str(settings.audio_sample_rate),
        "-ac",
        str(HOUSE_CHANNELS),
        "-c:a",
        "libmp3lame",
        "-b:a",
        f"{settings.audio_bitrate_kbps}k",
        "-id3v2_version",
        "0",
        "-fflags",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-f",
        "mp3",
        _file_url(dest),
    ]
    result = run(argv, timeout_s=settings.ffmpeg_timeout_s)
    if result.returncode != 0:
        dest.unlink(missing_ok=True)
        raise AudioError(
            "音频转码失败，请确认文件是完整的录音后重新上传",
            details={"ffmpeg": _tail(result.stderr)},
        )


def to_house_format(
    source: Path, dest: Path, *, settings: Settings, max_duration_s: float | None = None
) -> Loudness:
    """Decode ``source`` (any format ffmpeg reads) and write the normalised house format to ``dest``.

    Returns the loudness of what was written (measured, not assumed). ``max_duration_s`` cuts
    the input, so a file whose header lies about its length cannot make ffmpeg run for hours.
    """
    timeout = settings.ffmpeg_timeout_s
    measured = _analyse(source, settings=settings, timeout_s=timeout, max_s=max_duration_s)
    if measured.is_silent:
        _encode(source, dest, "anull", settings=settings, max_s=max_duration_s)
        return measured
    duration_ms = probe(source, timeout_s=timeout).duration_ms or 0
    gain = settings.loudness_target_lufs - measured.integrated_lufs
    if _linear_possible(measured, duration_ms / 1000, settings):
        _encode(source, dest, _linear_filter(measured, settings), settings=settings, max_s=max_duration_s)
    else:
        _encode(source, dest, _gain_limiter_filter(gain, settings), settings=settings, max_s=max_duration_s)
    result = _analyse(dest, settings=settings, timeout_s=timeout)
    error = settings.loudness_target_lufs - result.integrated_lufs
    if abs(error) <= CORRECTION_TOLERANCE_LU and result.true_peak_dbtp <= settings.true_peak_max_dbtp:
        return result
    # The limiter shaved off loudness (or the encoder overshot): one corrected pass from the
    # source, never from the already-encoded MP3, so there is no generation loss.
    corrected = _gain_limiter_filter(gain + error, settings)
    _encode(source, dest, corrected, settings=settings, max_s=max_duration_s)
    return _analyse(dest, settings=settings, timeout_s=timeout)
