"""Google Translate's TTS through gTTS: online and optional (mainland China usually cannot reach it).

gTTS is imported lazily so the server runs without the ``online-tts`` extra. Every request has
a timeout, failures are retried with exponential backoff (the sleep is injected so tests do
not wait), and what finally fails becomes a typed error with a message a person can act on.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

from broadcast.bulletins.textnorm import split_for_speech
from broadcast.bulletins.tts.base import (
    TTSError,
    TTSFailed,
    TTSRateLimited,
    TTSUnavailable,
    Voice,
    wav_from_pcm,
)
from broadcast.config import Settings

MAX_CHARS = 100  # gTTS's own request size (GOOGLE_TTS_MAX_CHARS)
BACKOFF_BASE_S = 0.5
SAMPLE_RATE = 24000  # what Google's TTS sends
VOICES = [
    Voice(id="zh-CN", name="普通话（谷歌在线）"),
    Voice(id="zh-TW", name="國語（谷歌在线）", language="zh-TW"),
    Voice(id="yue", name="粤语（谷歌在线）", language="yue"),
]
_ADVICE = "中国大陆通常无法访问谷歌服务，可改用离线引擎 espeak"


def _classify(exc: Exception, *, attempts: int) -> TTSError:
    response = getattr(exc, "rsp", None)
    status = getattr(response, "status_code", None)
    if status is None:
        return TTSUnavailable(
            f"无法连接谷歌语音服务（网络错误或超时，已尝试 {attempts} 次）。{_ADVICE}",
            details={"engine": "gtts", "attempts": attempts, "reason": str(exc)},
        )
    if status == 429:
        return TTSRateLimited(
            f"谷歌语音服务请求过于频繁（HTTP 429，已尝试 {attempts} 次），请稍后再试或改用 espeak",
            details={"engine": "gtts", "attempts": attempts, "status": status},
        )
    if status >= 500:
        return TTSUnavailable(
            f"谷歌语音服务暂时故障（HTTP {status}，已尝试 {attempts} 次），请稍后再试。{_ADVICE}",
            details={"engine": "gtts", "attempts": attempts, "status": status},
        )
    return TTSFailed(
        f"谷歌语音服务拒绝了请求（HTTP {status}）或没有返回音频",
        details={"engine": "gtts", "status": status, "reason": str(exc)},
    )


def mp3_to_wav(mp3: bytes, *, tempo: float, timeout_s: float) -> bytes:
    """Decode with ffmpeg; ``atempo`` carries the bulletin's speaking rate (gTTS has only one).

    ffmpeg cannot finish a WAV header on a pipe, so it writes raw PCM and Python wraps it."""
    argv = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "pipe",
        "-f", "mp3", "-i", "pipe:0", "-af", f"atempo={tempo:.3f}",
        "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "pipe:1",
    ]  # fmt: skip
    try:
        result = subprocess.run(argv, input=mp3, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TTSFailed(f"谷歌语音音频解码超时（超过 {timeout_s:g} 秒）") from exc
    if result.returncode != 0 or not result.stdout:
        stderr = result.stderr.decode(errors="replace")[-500:]
        raise TTSFailed("谷歌语音服务返回的音频无法解码", details={"ffmpeg": stderr})
    return wav_from_pcm(result.stdout, sample_rate=SAMPLE_RATE)


class GTTSEngine:
    name = "gtts"
    online = True

    def __init__(
        self,
        *,
        timeout_s: float,
        retries: int,
        ffmpeg_timeout_s: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            from gtts import gTTS, gTTSError
        except ImportError as exc:
            raise TTSUnavailable(
                "未安装 gTTS（pip install broadcast[online-tts]），谷歌在线语音不可用"
            ) from exc
        self._gtts: Any = gTTS
        self._error: type[Exception] = gTTSError
        self.timeout_s = timeout_s
        self.retries = retries
        self.ffmpeg_timeout_s = ffmpeg_timeout_s
        self.sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> GTTSEngine:
        return cls(
            timeout_s=settings.gtts_timeout_s,
            retries=settings.gtts_retries,
            ffmpeg_timeout_s=settings.ffmpeg_timeout_s,
        )

    def voices(self) -> list[Voice]:
        return list(VOICES)

    def synthesize(self, text: str, *, voice: str, rate: int) -> bytes:
        chunks = split_for_speech(text, max_chars=MAX_CHARS)
        if not chunks:
            raise TTSFailed("没有可朗读的文字")
        mp3 = b"".join(self._fetch(chunk, lang=voice) for chunk in chunks)
        return mp3_to_wav(mp3, tempo=rate / 100, timeout_s=self.ffmpeg_timeout_s)

    def _request(self, chunk: str, *, lang: str) -> bytes:
        tts = self._gtts(chunk, lang=lang, lang_check=False, timeout=self.timeout_s)
        return b"".join(tts.stream())

    def _fetch(self, chunk: str, *, lang: str) -> bytes:
        attempt = 0
        while True:
            attempt += 1
            try:
                audio = self._request(chunk, lang=lang)
            except self._error as exc:
                error = _classify(exc, attempts=attempt)
                if isinstance(error, TTSFailed) or attempt > self.retries:
                    raise error from exc
                self.sleep(BACKOFF_BASE_S * 2 ** (attempt - 1))
                continue
            if not audio:
                raise TTSFailed("谷歌语音服务没有返回音频", details={"engine": "gtts", "text": chunk})
            return audio
