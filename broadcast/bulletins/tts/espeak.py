"""The offline default engine: libespeak-ng 1.52 from the ``espeakng-loader`` wheel, via ctypes.

The wheel's 1.52 reads voice ``cmn`` correctly; Debian's 1.51 speaks the tone digits of its
pinyin as English numbers, so the system espeak-ng is never used. libespeak-ng keeps its voice,
rate and audio callback in process-global state, so every call holds one lock. A lock (rather
than a worker process) is enough: synthesis is fast, each server process loads its own copy of
the library, and ctypes releases the GIL while the C code runs.
"""

from __future__ import annotations

import ctypes
import threading
from functools import cache

from broadcast.bulletins.tts.base import TTSFailed, TTSUnavailable, Voice, wav_from_pcm

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_RATE = 1
POS_CHARACTER = 1
CHARS_UTF8 = 1
ENDPAUSE = 0x1000
NORMAL_WPM = 175
MIN_WPM, MAX_WPM = 80, 450

VOICES = [
    Voice(id="cmn", name="普通话（男声）"),
    Voice(id="cmn+f3", name="普通话（女声）"),
    Voice(id="yue", name="粤语", language="yue"),
]

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakLibrary:
    """One loaded libespeak-ng; all use goes through ``lock``."""

    def __init__(self, library_path: str, data_path: str) -> None:
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as exc:
            raise TTSUnavailable(f"无法加载 espeak-ng 语音库：{exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if self.sample_rate <= 0:
            raise TTSUnavailable(f"espeak-ng 初始化失败（数据目录 {data_path}）")
        self._lib = lib
        self._chunks: list[bytes] = []
        # Kept on self: ctypes must not garbage-collect a callback the library still holds.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], samples: int, _events: int | None) -> int:
        if wav and samples > 0:
            self._chunks.append(ctypes.string_at(wav, samples * 2))
        return 0

    def _set_voice(self, voice: str) -> None:
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise TTSFailed(f"espeak-ng 没有语音 {voice}；可用：{'、'.join(v.id for v in VOICES)}")

    def pcm(self, text: str, *, voice: str, wpm: int) -> bytes:
        """Signed 16-bit mono PCM at ``sample_rate``."""
        data = text.encode()
        with self.lock:
            self._set_voice(voice)
            self._lib.espeak_SetParameter(ESPEAK_RATE, wpm, 0)
            self._chunks = []
            status = self._lib.espeak_Synth(
                data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8 | ENDPAUSE, None, None
            )
            pcm = b"".join(self._chunks)
            self._chunks = []
        if status != 0:
            raise TTSFailed(f"espeak-ng 合成失败（错误码 {status}）")
        return pcm

    def phonemes(self, text: str, *, voice: str) -> str:
        """eSpeak's ASCII phoneme names for ``text``, one clause after another."""
        buffer = ctypes.c_char_p(text.encode())
        pointer = ctypes.pointer(buffer)
        clauses = []
        with self.lock:
            self._set_voice(voice)
            while buffer.value:
                clause = self._lib.espeak_TextToPhonemes(pointer, CHARS_UTF8, 0)
                clauses.append((clause or b"").decode())
        return " ".join(clauses)


@cache
def load_library() -> EspeakLibrary:
    try:
        import espeakng_loader
    except ImportError as exc:
        raise TTSUnavailable("未安装 espeakng-loader，离线语音合成不可用") from exc
    return EspeakLibrary(espeakng_loader.get_library_path(), espeakng_loader.get_data_path())


class EspeakEngine:
    """Offline Mandarin; robotic but intelligible, and needs no network at all."""

    name = "espeak"
    online = False

    def __init__(self, library: EspeakLibrary) -> None:
        self._library = library

    def voices(self) -> list[Voice]:
        return list(VOICES)

    def synthesize(self, text: str, *, voice: str, rate: int) -> bytes:
        if voice not in {v.id for v in VOICES}:
            raise TTSFailed(f"espeak 没有语音 {voice}；可用：{'、'.join(v.id for v in VOICES)}")
        wpm = max(MIN_WPM, min(MAX_WPM, round(NORMAL_WPM * rate / 100)))
        pcm = self._library.pcm(text, voice=voice, wpm=wpm)
        if not pcm:
            raise TTSFailed("espeak-ng 没有生成任何声音，请检查文字稿内容")
        return wav_from_pcm(pcm, sample_rate=self._library.sample_rate)

    def phonemes(self, text: str, *, voice: str = "cmn") -> str:
        return self._library.phonemes(text, voice=voice)
