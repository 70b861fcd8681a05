"""The real offline engine: Mandarin read as Mandarin, audible audio of a sane length."""

from __future__ import annotations

import io
import re
import wave
from array import array

import pytest

from broadcast.bulletins.tts.base import TTSFailed
from broadcast.bulletins.tts.espeak import EspeakEngine, load_library

# eSpeak's phonemes for English number words: what Debian's 1.51 says for the tone digits.
ENGLISH_DIGITS = re.compile(r"w'0n|t'u:|Tr'i:|f'o@|f'aIv|s'Iks|s'Ev@n|'eIt|n'aIn|\(en\)")


@pytest.fixture(scope="module")
def espeak() -> EspeakEngine:
    return EspeakEngine(load_library())


def _pcm(wav_bytes: bytes) -> tuple[array[int], int]:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return array("h", wav.readframes(wav.getnframes())), wav.getframerate()


@pytest.mark.parametrize("voice", ["cmn", "cmn+f3"])
def test_mandarin_phonemes_are_pinyin_with_tones(espeak: EspeakEngine, voice: str) -> None:
    phonemes = espeak.phonemes("你好", voice=voice)
    assert re.search(r"ni214.*Au214", phonemes), phonemes
    assert not ENGLISH_DIGITS.search(phonemes), phonemes


def test_a_whole_bulletin_has_no_english(espeak: EspeakEngine) -> None:
    phonemes = espeak.phonemes("村民朋友们，今天是二零二六年十月一日，森林火险等级四级。")
    assert not ENGLISH_DIGITS.search(phonemes), phonemes
    assert len(re.findall(r"\d{2,3}", phonemes)) >= 20  # a tone on (almost) every syllable


def test_synthesises_audible_speech_of_a_sane_length(espeak: EspeakEngine) -> None:
    samples, rate = _pcm(espeak.synthesize("村民朋友们，请注意防火。", voice="cmn", rate=100))
    seconds = len(samples) / rate
    assert 1.0 < seconds < 6.0
    assert max(abs(s) for s in samples) > 3000  # not silent


def test_rate_changes_the_length(espeak: EspeakEngine) -> None:
    normal, _ = _pcm(espeak.synthesize("严禁野外用火。", voice="cmn", rate=100))
    slow, _ = _pcm(espeak.synthesize("严禁野外用火。", voice="cmn", rate=60))
    assert len(slow) > len(normal) * 1.3


def test_unknown_voice_is_a_typed_error(espeak: EspeakEngine) -> None:
    with pytest.raises(TTSFailed, match="没有语音"):
        espeak.synthesize("你好", voice="klingon", rate=100)
