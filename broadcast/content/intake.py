"""Checks an uploaded recording must pass before it is transcoded: pure functions of bytes and probes.

The file name and the client's MIME type are never consulted: the first bytes are sniffed with
``filetype`` against an allowlist, then ffprobe must agree (container, exactly one audio
stream, no video, a duration within the limit), and after decoding the real length must match
what the header promised (a shorter decode means a truncated file).
"""

from __future__ import annotations

from pathlib import Path

import filetype

from broadcast.config import Settings
from broadcast.content.audio import Probe
from broadcast.errors import Invalid, TooLarge, UnsupportedMedia

SNIFF_BYTES = 261
ALLOWED_NAMES = "mp3、wav、ogg/opus、m4a/aac、flac、amr"
# What filetype may call an acceptable recording. mp4/3gp are audio containers too (phones save
# .m4a/.3gp); a video inside them is caught by ffprobe below.
SNIFFED_KINDS = frozenset({"mp3", "wav", "ogg", "flac", "m4a", "aac", "amr", "mp4", "3gp"})
PROBED_FORMATS = frozenset({"mp3", "wav", "ogg", "flac", "aac", "amr", "mov,mp4,m4a,3gp,3g2,mj2"})
# A decode this much shorter than the header's duration means the file was cut off.
TRUNCATION_TOLERANCE_MS = 1000
TRUNCATION_TOLERANCE_RATIO = 0.05


def check_size(size_bytes: int, settings: Settings) -> None:
    if size_bytes == 0:
        raise Invalid("上传的文件是空的（0 字节），请选择录音文件后重新上传")
    if size_bytes > settings.clip_max_bytes:
        raise TooLarge(
            f"文件过大：上限 {settings.clip_max_bytes // (1024 * 1024)} MB，请压缩或剪短后再上传",
            details={"max_bytes": settings.clip_max_bytes},
        )


def sniff(path: Path) -> str:
    """The container as the first bytes say it is; UnsupportedMedia when it is not a recording."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    kind = filetype.guess(head)
    if kind is None:
        raise UnsupportedMedia(
            f"无法识别的文件内容：这不是音频文件（请上传 {ALLOWED_NAMES} 录音，改扩展名无效）",
        )
    if kind.extension not in SNIFFED_KINDS:
        raise UnsupportedMedia(
            f"不支持的文件格式 {kind.extension}（{kind.mime}），请转换为 {ALLOWED_NAMES} 后上传",
            details={"detected": kind.extension},
        )
    return str(kind.extension)


def check_probe(info: Probe, settings: Settings) -> None:
    if info.video_streams:
        raise UnsupportedMedia(
            "文件包含视频画面，不能作为录音素材：请只导出音频（如 mp3、m4a）后上传",
            details={"video_codecs": [s.codec_name for s in info.video_streams]},
        )
    if info.format_name not in PROBED_FORMATS:
        raise UnsupportedMedia(
            f"不支持的容器格式 {info.format_name}，请转换为 {ALLOWED_NAMES} 后上传",
            details={"format": info.format_name},
        )
    audio = info.audio_streams
    if len(audio) != 1:
        raise Invalid(
            f"录音必须恰好包含一条音轨，此文件有 {len(audio)} 条",
            details={"audio_streams": len(audio)},
        )
    check_duration(info.duration_ms, settings)


def check_duration(duration_ms: int | None, settings: Settings) -> None:
    limit_ms = settings.clip_max_duration_s * 1000
    if duration_ms is None or duration_ms <= 0:
        raise Invalid("无法读取录音时长：文件可能已损坏，请重新导出后上传")
    if duration_ms > limit_ms:
        raise Invalid(
            f"录音过长：{_hms(duration_ms)}，上限为 {_hms(limit_ms)}，请剪短后再上传",
            details={"duration_ms": duration_ms, "max_duration_ms": limit_ms},
        )


def check_decoded(decoded: Probe, *, declared: Probe, settings: Settings) -> None:
    """Compare the converted audio with what the source's header promised."""
    check_duration(decoded.duration_ms, settings)
    if declared.duration_estimated or declared.duration_ms is None:
        return
    missing_ms = declared.duration_ms - (decoded.duration_ms or 0)
    if missing_ms > max(TRUNCATION_TOLERANCE_MS, declared.duration_ms * TRUNCATION_TOLERANCE_RATIO):
        raise Invalid(
            f"文件不完整：文件头标明时长 {_hms(declared.duration_ms)}，实际只能解码 "
            f"{_hms(decoded.duration_ms or 0)}（可能上传或拷贝时被截断），请重新导出后上传",
            details={"declared_ms": declared.duration_ms, "decoded_ms": decoded.duration_ms},
        )


def source_format(kind: str, info: Probe) -> str:
    codec = info.audio_streams[0].codec_name if info.audio_streams else ""
    if not codec or codec == kind or (codec.startswith("pcm_") and kind == "wav"):
        return kind
    return f"{kind}/{codec}"[:32]


def _hms(duration_ms: int) -> str:
    seconds = round(duration_ms / 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}小时{minutes}分{secs}秒" if hours else f"{minutes}分{secs}秒"
