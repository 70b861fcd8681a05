"""The content-addressed audio store and ``ingest_audio``, the one way audio gets into it.

Files are named by the sha256 of their bytes (always the house format, see ``audio.py``) below
``settings.store_dir`` with a two-level fan-out (``ab/cd/abcd….mp3``) so no directory grows
huge. Writes are atomic: ffmpeg writes into ``<root>/.tmp`` (same file system), the file is
fsynced and ``os.replace``d into place, so a reader never sees half a file and storing the same
bytes twice is harmless.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.content.audio import HOUSE_CODEC, Probe, probe, to_house_format
from broadcast.content.models import AudioBlob

SUFFIX = ".mp3"
_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AudioStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / ".tmp"

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}{SUFFIX}"

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    @contextmanager
    def temp_path(self, suffix: str = SUFFIX) -> Iterator[Path]:
        """A fresh path on the store's file system, removed afterwards unless it was put()."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        path = self.tmp_dir / f"{uuid.uuid4().hex}{suffix}"
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def put(self, temp: Path) -> str:
        """Move a finished file into the store under its hash; idempotent. Returns the sha256."""
        sha256 = sha256_file(temp)
        final = self.path_for(sha256)
        if final.is_file():
            temp.unlink()
            return sha256
        final.parent.mkdir(parents=True, exist_ok=True)
        with temp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, final)
        _fsync_dir(final.parent)
        return sha256

    def put_bytes(self, data: bytes) -> str:
        with self.temp_path() as temp:
            temp.write_bytes(data)
            return self.put(temp)


def get_store(settings: Settings) -> AudioStore:
    return AudioStore(settings.store_dir)


def _insert_blob_ignoring_duplicate(session: Session, values: dict[str, object]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: two ingests of the same audio may race."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(AudioBlob).values(**values).on_conflict_do_nothing(index_elements=["sha256"])
    session.execute(statement)


def ingest_audio(
    session: Session,
    *,
    store: AudioStore,
    source: Path,
    settings: Settings,
    max_duration_s: float | None = None,
    validate: Callable[[Probe], None] | None = None,
) -> AudioBlob:
    """Normalise any decodable audio into the house format, store it and return its blob row.

    ``max_duration_s`` stops decoding there; ``validate`` sees the probe of the converted audio
    and may raise before anything is stored. Raises ``AudioError`` (422) when ffmpeg cannot
    decode ``source``; nothing is stored then.
    """
    with store.temp_path() as temp:
        loudness = to_house_format(source, temp, settings=settings, max_duration_s=max_duration_s)
        return store_house_file(
            session,
            store=store,
            path=temp,
            settings=settings,
            loudness_lufs=loudness.integrated_lufs,
            true_peak_dbtp=loudness.true_peak_dbtp,
            validate=validate,
        )


def store_house_file(
    session: Session,
    *,
    store: AudioStore,
    path: Path,
    settings: Settings,
    loudness_lufs: float | None,
    true_peak_dbtp: float | None,
    validate: Callable[[Probe], None] | None = None,
) -> AudioBlob:
    """Store a file that is already in the house format (moved into the store) and record its blob."""
    info = probe(path, timeout_s=settings.ffmpeg_timeout_s)
    if validate is not None:
        validate(info)
    size = path.stat().st_size
    sha256 = store.put(path)
    existing = session.get(AudioBlob, sha256)
    if existing is not None:
        return existing
    stream = info.audio_streams[0]
    _insert_blob_ignoring_duplicate(
        session,
        {
            "sha256": sha256,
            "size_bytes": size,
            "duration_ms": info.duration_ms or 0,
            "sample_rate": stream.sample_rate or settings.audio_sample_rate,
            "channels": stream.channels or 1,
            "codec": HOUSE_CODEC,
            "loudness_lufs": loudness_lufs,
            "true_peak_dbtp": true_peak_dbtp,
            "created_at": utc_now(),
        },
    )
    blob = session.get(AudioBlob, sha256)
    if blob is None:
        raise RuntimeError(f"audio blob {sha256} vanished right after insert")
    return blob
