"""gTTS against a fake Google batchexecute endpoint (``responses``): no test touches the network."""

from __future__ import annotations

import base64
import io
import re
import urllib.parse
import wave
from collections.abc import Iterator

import pytest
import requests
import responses

from broadcast.bulletins.tts.base import TTSFailed, TTSRateLimited, TTSUnavailable
from broadcast.bulletins.tts.gtts_engine import GTTSEngine
from tests.bulletins.conftest import tone_mp3

ENDPOINT = re.compile(r"https://translate\.google\.com/_/TranslateWebserverUi/data/batchexecute.*")


@pytest.fixture(scope="module")
def mp3() -> bytes:
    return tone_mp3(0.5)


def batchexecute_body(audio: bytes) -> str:
    encoded = base64.b64encode(audio).decode()
    return f')]}}\'\n\n[["wrb.fr","jQ1olc","[\\"{encoded}\\"]",null,null,null,"generic"]]\n'


@pytest.fixture
def fake_google() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def engine(sleeps: list[float]) -> GTTSEngine:
    return GTTSEngine(timeout_s=7.5, retries=3, ffmpeg_timeout_s=30, sleep=sleeps.append)


def _seconds(wav_bytes: bytes) -> float:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        return wav.getnframes() / wav.getframerate()


def _sent_text(call: responses.Call) -> str:
    body = call.request.body
    assert isinstance(body, str)
    return urllib.parse.unquote(body)


def test_success_returns_wav_and_every_request_has_a_timeout(
    engine: GTTSEngine, fake_google: responses.RequestsMock, mp3: bytes
) -> None:
    fake_google.add(responses.POST, ENDPOINT, body=batchexecute_body(mp3))
    wav = engine.synthesize("村民朋友们，请注意防火。", voice="zh-CN", rate=100)
    assert wav[:4] == b"RIFF"
    assert _seconds(wav) == pytest.approx(0.5, abs=0.1)
    assert len(fake_google.calls) == 1
    assert fake_google.calls[0].request.req_kwargs["timeout"] == 7.5  # type: ignore[attr-defined]
    assert "zh-CN" in _sent_text(fake_google.calls[0])


def test_long_text_is_split_into_requests_at_sentences(
    engine: GTTSEngine, fake_google: responses.RequestsMock, mp3: bytes
) -> None:
    fake_google.add(responses.POST, ENDPOINT, body=batchexecute_body(mp3))
    text = "今天起进入森林防火期，严禁野外用火，严禁上坟烧纸。" * 10
    wav = engine.synthesize(text, voice="zh-CN", rate=100)
    assert len(fake_google.calls) >= 3
    assert _seconds(wav) == pytest.approx(0.5 * len(fake_google.calls), abs=0.3)


def test_rate_is_applied_by_tempo(
    engine: GTTSEngine, fake_google: responses.RequestsMock, mp3: bytes
) -> None:
    fake_google.add(responses.POST, ENDPOINT, body=batchexecute_body(mp3))
    assert _seconds(engine.synthesize("你好", voice="zh-CN", rate=50)) == pytest.approx(1.0, abs=0.15)


def test_429_is_retried_with_backoff_then_surfaced(
    engine: GTTSEngine, fake_google: responses.RequestsMock, sleeps: list[float]
) -> None:
    fake_google.add(responses.POST, ENDPOINT, status=429)
    with pytest.raises(TTSRateLimited) as caught:
        engine.synthesize("你好", voice="zh-CN", rate=100)
    assert len(fake_google.calls) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert "429" in caught.value.message
    assert caught.value.status_code == 429


def test_a_retry_that_succeeds_returns_audio(
    engine: GTTSEngine, fake_google: responses.RequestsMock, sleeps: list[float], mp3: bytes
) -> None:
    fake_google.add(responses.POST, ENDPOINT, status=429)
    fake_google.add(responses.POST, ENDPOINT, status=503)
    fake_google.add(responses.POST, ENDPOINT, body=batchexecute_body(mp3))
    assert engine.synthesize("你好", voice="zh-CN", rate=100)[:4] == b"RIFF"
    assert sleeps == [0.5, 1.0]


def test_timeout_becomes_unavailable_after_the_retries(
    engine: GTTSEngine, fake_google: responses.RequestsMock, sleeps: list[float]
) -> None:
    fake_google.add(responses.POST, ENDPOINT, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(TTSUnavailable, match="超时") as caught:
        engine.synthesize("你好", voice="zh-CN", rate=100)
    assert len(fake_google.calls) == 4
    assert len(sleeps) == 3
    assert caught.value.details["attempts"] == 4


def test_connection_refused_is_unavailable(engine: GTTSEngine, fake_google: responses.RequestsMock) -> None:
    fake_google.add(responses.POST, ENDPOINT, body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(TTSUnavailable, match="espeak"):
        engine.synthesize("你好", voice="zh-CN", rate=100)


def test_forbidden_or_empty_answers_fail_without_retrying(
    engine: GTTSEngine, fake_google: responses.RequestsMock, sleeps: list[float]
) -> None:
    fake_google.add(responses.POST, ENDPOINT, status=403)
    with pytest.raises(TTSFailed, match="403"):
        engine.synthesize("你好", voice="zh-CN", rate=100)
    fake_google.replace(responses.POST, ENDPOINT, body=")]}'\n\n[]\n")
    with pytest.raises(TTSFailed, match="没有返回音频"):
        engine.synthesize("你好", voice="zh-CN", rate=100)
    assert sleeps == []


def test_garbage_audio_is_a_typed_error(engine: GTTSEngine, fake_google: responses.RequestsMock) -> None:
    fake_google.add(responses.POST, ENDPOINT, body=batchexecute_body(b"this is not an mp3 file at all"))
    with pytest.raises(TTSFailed, match="无法解码"):
        engine.synthesize("你好", voice="zh-CN", rate=100)
