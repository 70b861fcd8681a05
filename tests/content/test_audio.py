"""The house format and the store: measured by ffmpeg, on generated audio."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from broadcast.config import Settings
from broadcast.content.audio import AudioError, measure_loudness, probe, to_house_format
from broadcast.content.models import AudioBlob
from broadcast.content.store import AudioStore, get_store, ingest_audio, sha256_file
from tests.content.conftest import make_speech, stored_files

TP_TOLERANCE_DB = 0.2


def assert_house_format(path: Path, settings: Settings, *, seconds: float) -> None:
    info = probe(path, timeout_s=30)
    assert info.format_name == "mp3"
    (stream,) = info.streams
    assert (stream.codec_name, stream.sample_rate, stream.channels) == ("mp3", 48000, 1)
    assert info.duration_ms == pytest.approx(seconds * 1000, abs=80)
    loudness = measure_loudness(path)
    assert loudness.integrated_lufs == pytest.approx(settings.loudness_target_lufs, abs=1.0)
    assert loudness.true_peak_dbtp <= settings.true_peak_max_dbtp + TP_TOLERANCE_DB


@pytest.mark.parametrize("seconds", [1, 3, 5])
def test_short_inputs_hit_the_target_although_loudnorm_cannot_run_linear(
    tmp_path: Path, settings: Settings, seconds: int
) -> None:
    source = make_speech(tmp_path / "in.wav", seconds=seconds, amp=0.05)
    to_house_format(source, tmp_path / "out.mp3", settings=settings)
    assert_house_format(tmp_path / "out.mp3", settings, seconds=seconds)


@pytest.mark.parametrize(("label", "amp", "seconds"), [("quiet long", 0.01, 8), ("hot stereo", 0.9, 4)])
def test_quiet_and_clipping_inputs_are_normalised(
    tmp_path: Path, settings: Settings, label: str, amp: float, seconds: int
) -> None:
    source = make_speech(tmp_path / "in.wav", seconds=seconds, amp=amp, codec=("-ac", "2"))
    to_house_format(source, tmp_path / "out.mp3", settings=settings)
    assert_house_format(tmp_path / "out.mp3", settings, seconds=seconds)


def test_the_target_is_configurable(tmp_path: Path, settings: Settings) -> None:
    quieter = settings.model_copy(update={"loudness_target_lufs": -20.0})
    source = make_speech(tmp_path / "in.wav", seconds=4)
    to_house_format(source, tmp_path / "out.mp3", settings=quieter)
    assert measure_loudness(tmp_path / "out.mp3").integrated_lufs == pytest.approx(-20.0, abs=1.0)


def test_silence_stays_silent_instead_of_being_amplified(tmp_path: Path, settings: Settings) -> None:
    source = tmp_path / "silence.wav"
    make_speech(source, seconds=2, amp=0.0)
    to_house_format(source, tmp_path / "out.mp3", settings=settings)
    assert measure_loudness(tmp_path / "out.mp3").is_silent


def test_conversion_is_deterministic_so_hashes_are_stable(tmp_path: Path, settings: Settings) -> None:
    source = make_speech(tmp_path / "in.wav", seconds=2)
    to_house_format(source, tmp_path / "a.mp3", settings=settings)
    to_house_format(source, tmp_path / "b.mp3", settings=settings)
    assert sha256_file(tmp_path / "a.mp3") == sha256_file(tmp_path / "b.mp3")


def test_text_is_refused_by_ffprobe(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp3"
    fake.write_text("这不是录音\n" * 50, encoding="utf-8")
    with pytest.raises(AudioError):
        probe(fake, timeout_s=10)


def test_store_paths_fan_out_and_reject_non_hashes(tmp_path: Path) -> None:
    store = AudioStore(tmp_path)
    digest = "ab" * 32
    assert store.path_for(digest) == tmp_path / "ab" / "ab" / f"{digest}.mp3"
    for bad in ["../etc/passwd", "AB" * 32, "ab" * 31]:
        with pytest.raises(ValueError, match="sha256"):
            store.path_for(bad)


def test_put_is_atomic_and_idempotent(tmp_path: Path) -> None:
    store = AudioStore(tmp_path)
    first = store.put_bytes(b"same bytes")
    second = store.put_bytes(b"same bytes")
    assert first == second
    assert store.path_for(first).read_bytes() == b"same bytes"
    assert list(store.tmp_dir.iterdir()) == []


def test_ingest_stores_once_and_records_measurements(
    tmp_path: Path, settings: Settings, lite_session: Session
) -> None:
    source = make_speech(tmp_path / "in.flac", seconds=3, codec=("-c:a", "flac"))
    store = get_store(settings)
    blob = ingest_audio(lite_session, store=store, source=source, settings=settings)
    again = ingest_audio(lite_session, store=store, source=source, settings=settings)
    lite_session.commit()
    assert again.sha256 == blob.sha256
    assert len(lite_session.exec(select(AudioBlob)).all()) == 1
    assert stored_files(settings) == [store.path_for(blob.sha256)]
    assert blob.size_bytes == store.path_for(blob.sha256).stat().st_size
    assert sha256_file(store.path_for(blob.sha256)) == blob.sha256
    assert (blob.codec, blob.sample_rate, blob.channels) == ("mp3", 48000, 1)
    assert blob.duration_ms == pytest.approx(3000, abs=80)
    assert blob.loudness_lufs == pytest.approx(-16.0, abs=1.0)
    assert blob.true_peak_dbtp is not None
    assert blob.true_peak_dbtp <= -1.5 + TP_TOLERANCE_DB
