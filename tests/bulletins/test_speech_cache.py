"""The engine registry, the fallback order and the speech cache (real store, real ffmpeg)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session

from broadcast.bulletins import service
from broadcast.bulletins.templates import RenderContext
from broadcast.bulletins.tts.base import TTSUnavailable
from broadcast.bulletins.tts.cache import Speech, cache_key, speak
from broadcast.bulletins.tts.registry import engine_order, get_engine, synthesize_with_fallback
from broadcast.config import Settings
from broadcast.content.models import Bulletin, TTSCacheEntry
from broadcast.content.store import AudioStore
from broadcast.errors import Invalid
from tests.bulletins.conftest import BrokenEngine, CountingEngine, ToneEngine


def test_unknown_engine_is_422_listing_the_available_ones(settings: Settings) -> None:
    with pytest.raises(Invalid) as caught:
        get_engine("piper", settings=settings)
    assert caught.value.status_code == 422
    assert "espeak" in caught.value.message
    assert "gtts" in caught.value.details["available"]


def test_engine_order_puts_the_bulletins_engine_first(settings: Settings) -> None:
    configured = settings.model_copy(update={"tts_engines": ["gtts", "espeak"]})
    assert engine_order(None, settings=configured) == ["gtts", "espeak"]
    assert engine_order("espeak", settings=configured) == ["espeak", "gtts"]


def test_fallback_skips_a_failing_engine_for_espeak(settings: Settings, broken: BrokenEngine) -> None:
    result = synthesize_with_fallback(
        "你好", engines=["broken", "espeak"], voice=None, rate=90, settings=settings
    )
    assert broken.calls == 1
    assert (result.engine, result.voice) == ("espeak", "cmn")
    assert result.wav[:4] == b"RIFF"


def test_all_engines_failing_reports_each(settings: Settings, broken: BrokenEngine, tone: ToneEngine) -> None:
    with pytest.raises(TTSUnavailable) as caught:
        synthesize_with_fallback("好", engines=["broken", "broken"], voice=None, rate=100, settings=settings)
    assert "broken" in caught.value.message
    assert len(caught.value.details["failures"]) == 2
    with pytest.raises(Invalid):
        synthesize_with_fallback("你好", engines=["tone", "nope"], voice=None, rate=100, settings=settings)
    assert tone.calls == []  # a typo in the order is refused before anything is synthesised


def speak_tone(session: Session, *, store: AudioStore, settings: Settings) -> Speech:
    return speak(session, text="你好", engines=["tone"], voice=None, rate=100, store=store, settings=settings)


def test_cache_hit_does_not_synthesise_again(
    audio_session: Session, store: AudioStore, settings: Settings, tone: ToneEngine
) -> None:
    first = speak_tone(audio_session, store=store, settings=settings)
    second = speak_tone(audio_session, store=store, settings=settings)
    assert (first.cached, second.cached) == (False, True)
    assert first.blob.sha256 == second.blob.sha256
    assert len(tone.calls) == 1
    entry = audio_session.get(TTSCacheEntry, cache_key(engine="tone", voice="beep", rate=100, text="你好"))
    assert entry is not None
    assert entry.blob_sha256 == first.blob.sha256
    assert store.exists(first.blob.sha256)
    assert first.blob.codec == "mp3"
    assert first.blob.sample_rate == settings.audio_sample_rate


def test_cache_key_depends_on_engine_voice_rate_and_text() -> None:
    base = {"engine": "espeak", "voice": "cmn", "rate": 100, "text": "你好"}
    variants = [base, {**base, "engine": "gtts"}, {**base, "voice": "cmn+f3"}, {**base, "rate": 120}]
    variants.append({**base, "text": "再见"})
    keys = {cache_key(**v) for v in variants}  # type: ignore[arg-type]
    assert len(keys) == len(variants)
    assert all(len(k) == 64 for k in keys)


def test_a_lost_file_is_synthesised_again(
    audio_session: Session, store: AudioStore, settings: Settings, tone: ToneEngine
) -> None:
    first = speak_tone(audio_session, store=store, settings=settings)
    store.path_for(first.blob.sha256).unlink()
    again = speak_tone(audio_session, store=store, settings=settings)
    assert not again.cached
    assert len(tone.calls) == 2
    assert store.exists(again.blob.sha256)


def test_render_bulletin_audio_per_village_and_cached(
    audio_session: Session, store: AudioStore, settings: Settings, counting_espeak: CountingEngine
) -> None:
    bulletin = Bulletin(title="防火", text="{village}的村民朋友们，{date}起严禁野外用火。", rate=130)
    day = date(2026, 10, 1)

    def render(village: str) -> str:
        context = RenderContext(village=village, town="青山镇", local_date=day)
        blob = service.render_bulletin_audio(
            audio_session, bulletin=bulletin, context=context, store=store, settings=settings
        )
        assert 1000 < blob.duration_ms < 8000
        assert blob.loudness_lufs == pytest.approx(settings.loudness_target_lufs, abs=1.0)
        return blob.sha256

    first, second, first_again = render("桃花村"), render("杏花村"), render("桃花村")
    assert first != second
    assert first == first_again
    assert counting_espeak.calls == 2
