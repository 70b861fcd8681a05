"""Engines by name, and the fallback order. A new engine (edge-tts, a domestic cloud vendor, piper
with a local model) is one factory added to ``FACTORIES``; callers never change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from broadcast.bulletins.tts.base import (
    TTSEngine,
    TTSError,
    TTSRateLimited,
    TTSUnavailable,
    Voice,
    pick_voice,
)
from broadcast.bulletins.tts.espeak import EspeakEngine, load_library
from broadcast.bulletins.tts.gtts_engine import GTTSEngine
from broadcast.config import Settings
from broadcast.errors import Invalid

T = TypeVar("T")
EngineFactory = Callable[[Settings], TTSEngine]


def _espeak(_: Settings) -> TTSEngine:
    return EspeakEngine(load_library())


FACTORIES: dict[str, EngineFactory] = {"espeak": _espeak, "gtts": GTTSEngine.from_settings}


def engine_names() -> list[str]:
    return list(FACTORIES)


def check_engine_name(name: str) -> None:
    if name not in FACTORIES:
        raise Invalid(
            f"未知的语音合成引擎：{name}；可用引擎：{'、'.join(FACTORIES)}",
            details={"engine": name, "available": engine_names()},
        )


def get_engine(name: str, *, settings: Settings) -> TTSEngine:
    """The engine called ``name``; 422 if there is none, TTSUnavailable if it cannot run here."""
    check_engine_name(name)
    return FACTORIES[name](settings)


def engine_order(preferred: str | None, *, settings: Settings) -> list[str]:
    """The bulletin's own engine first, then the configured order without repeats."""
    order = [preferred] if preferred else []
    return order + [name for name in settings.tts_engines if name not in order]


@dataclass(frozen=True)
class EngineInfo:
    name: str
    online: bool
    available: bool
    reason: str | None = None
    voices: list[Voice] = field(default_factory=list)


def describe_engines(*, settings: Settings) -> list[EngineInfo]:
    infos = []
    for name in FACTORIES:
        try:
            engine = get_engine(name, settings=settings)
        except TTSError as exc:
            infos.append(EngineInfo(name=name, online=False, available=False, reason=exc.message))
            continue
        infos.append(EngineInfo(name=name, online=engine.online, available=True, voices=engine.voices()))
    return infos


def _all_failed(failures: list[tuple[str, TTSError]]) -> TTSError:
    if len(failures) == 1:
        return failures[0][1]
    summary = "；".join(f"{name}：{exc.message}" for name, exc in failures)
    details = [{"engine": name, "code": exc.code, "message": exc.message} for name, exc in failures]
    kind = TTSRateLimited if all(isinstance(e, TTSRateLimited) for _, e in failures) else TTSUnavailable
    return kind(f"所有语音合成引擎都失败了（{summary}）", details={"failures": details})


def with_fallback(names: list[str], attempt: Callable[[TTSEngine], T], *, settings: Settings) -> T:
    """``attempt`` with each engine in turn until one succeeds; an unknown name is a 422 at once."""
    if not names:
        raise TTSUnavailable("没有配置语音合成引擎（BROADCAST_TTS_ENGINES 为空）")
    for name in names:
        check_engine_name(name)
    failures: list[tuple[str, TTSError]] = []
    for name in names:
        try:
            return attempt(get_engine(name, settings=settings))
        except TTSError as exc:
            failures.append((name, exc))
    raise _all_failed(failures)


@dataclass(frozen=True)
class Synthesis:
    engine: str
    voice: str
    wav: bytes


def synthesize_with_fallback(
    text: str, *, engines: list[str], voice: str | None, rate: int, settings: Settings
) -> Synthesis:
    def attempt(engine: TTSEngine) -> Synthesis:
        chosen = pick_voice(engine, voice)
        return Synthesis(
            engine=engine.name, voice=chosen, wav=engine.synthesize(text, voice=chosen, rate=rate)
        )

    return with_fallback(engines, attempt, settings=settings)
