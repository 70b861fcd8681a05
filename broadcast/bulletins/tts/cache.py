"""Speech in the content store, cached by (engine, voice, rate, normalised text).

A hit returns the stored blob without synthesising; a miss synthesises, normalises the WAV into
the house format through the content store, and remembers the blob under the key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from broadcast.bulletins.tts.base import TTSEngine, pick_voice
from broadcast.bulletins.tts.registry import with_fallback
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.content.models import AudioBlob, TTSCacheEntry
from broadcast.content.store import AudioStore, ingest_audio


def cache_key(*, engine: str, voice: str, rate: int, text: str) -> str:
    payload = json.dumps([engine, voice, rate, text], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Speech:
    blob: AudioBlob
    engine: str
    voice: str
    cached: bool


def _cached_blob(session: Session, *, key: str, store: AudioStore) -> AudioBlob | None:
    entry = session.get(TTSCacheEntry, key)
    if entry is None or not store.exists(entry.blob_sha256):
        return None
    return session.get(AudioBlob, entry.blob_sha256)


def _remember(
    session: Session, *, key: str, engine: str, voice: str, rate: int, text: str, blob: str
) -> None:
    """Upsert: two renders of the same text may race, and a lost file is re-synthesised."""
    entry = session.get(TTSCacheEntry, key)
    if entry is not None:
        entry.blob_sha256 = blob
        session.flush()
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {
        "key": key,
        "engine": engine,
        "voice": voice,
        "rate": rate,
        "text": text,
        "blob_sha256": blob,
        "created_at": utc_now(),
    }
    statement = insert(TTSCacheEntry).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["key"], set_={"blob_sha256": statement.excluded.blob_sha256}
    )
    session.execute(statement)


def _store_wav(session: Session, wav: bytes, *, store: AudioStore, settings: Settings) -> AudioBlob:
    with store.temp_path(suffix=".wav") as source:
        source.write_bytes(wav)
        return ingest_audio(session, store=store, source=source, settings=settings)


def speak(
    session: Session,
    *,
    text: str,
    engines: list[str],
    voice: str | None,
    rate: int,
    store: AudioStore,
    settings: Settings,
) -> Speech:
    """Speech for already-normalised ``text``, from the cache or the first engine that works."""

    def attempt(engine: TTSEngine) -> Speech:
        chosen = pick_voice(engine, voice)
        key = cache_key(engine=engine.name, voice=chosen, rate=rate, text=text)
        hit = _cached_blob(session, key=key, store=store)
        if hit is not None:
            return Speech(blob=hit, engine=engine.name, voice=chosen, cached=True)
        blob = _store_wav(
            session, engine.synthesize(text, voice=chosen, rate=rate), store=store, settings=settings
        )
        _remember(session, key=key, engine=engine.name, voice=chosen, rate=rate, text=text, blob=blob.sha256)
        return Speech(blob=blob, engine=engine.name, voice=chosen, cached=False)

    return with_fallback(engines, attempt, settings=settings)
