"""Built-in chimes (提示音): generated with ffmpeg on first use, never shipped as binaries.

Each chime is a few bell-like tones (a sine plus a quieter octave, decaying exponentially, each
ringing on under the next) rendered by ffmpeg's ``aevalsrc`` and then stored through
``ingest_audio`` like any other audio, so it is in the house format and at the house loudness.
The generation is deterministic (bit-exact encoder), so the stored sha256 is stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from broadcast.auth.audit import SYSTEM, record, snapshot
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.content.audio import FFMPEG, AudioError, run
from broadcast.content.models import Chime, ChimeKind
from broadcast.content.store import AudioStore, ingest_audio

C5, E5, G5, C6 = 523.25, 659.25, 783.99, 1046.50
TAIL_S = 0.9
DECAY_PER_S = 4.0


@dataclass(frozen=True)
class Tone:
    freq_hz: float
    start_s: float


@dataclass(frozen=True)
class ChimeSpec:
    key: str
    name: str
    kind: ChimeKind
    tones: tuple[Tone, ...]

    @property
    def duration_s(self) -> float:
        return max(t.start_s for t in self.tones) + TAIL_S


BUILTIN_CHIMES = (
    ChimeSpec(
        key="builtin-attention",
        name="开始提示音（上行四音）",
        kind=ChimeKind.attention,
        tones=(Tone(C5, 0.0), Tone(E5, 0.35), Tone(G5, 0.7), Tone(C6, 1.05)),
    ),
    ChimeSpec(
        key="builtin-closing",
        name="结束提示音（下行四音）",
        kind=ChimeKind.closing,
        tones=(Tone(C6, 0.0), Tone(G5, 0.35), Tone(E5, 0.7), Tone(C5, 1.05)),
    ),
)


def tone_expression(tones: tuple[Tone, ...]) -> str:
    """An ``aevalsrc`` expression: each tone starts at its time and decays, overlapping the next."""
    terms = []
    for tone in tones:
        age = f"(t-{tone.start_s})"
        envelope = f"gte(t,{tone.start_s})*exp(-{DECAY_PER_S}*{age})"
        body = f"(sin(2*PI*{tone.freq_hz}*{age})+0.3*sin(4*PI*{tone.freq_hz}*{age}))"
        terms.append(f"{envelope}*{body}")
    return f"0.2*({'+'.join(terms)})"


def render_chime(spec: ChimeSpec, dest: Path, *, settings: Settings) -> None:
    rate = settings.audio_sample_rate
    fade_start = spec.duration_s - 0.2
    argv = [
        FFMPEG,
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"aevalsrc=exprs='{tone_expression(spec.tones)}':s={rate}:d={spec.duration_s}",
        "-af",
        f"afade=t=in:d=0.005,afade=t=out:st={fade_start}:d=0.2",
        "-c:a",
        "pcm_s16le",
        "-f",
        "wav",
        str(dest),
    ]
    result = run(argv, timeout_s=settings.ffmpeg_timeout_s)
    if result.returncode != 0:
        raise AudioError(f"生成提示音 {spec.key} 失败", details={"ffmpeg": result.stderr[-500:]})


def _existing(session: Session, key: str) -> Chime | None:
    return session.exec(select(Chime).where(Chime.key == key)).first()


def _ensure_one(session: Session, spec: ChimeSpec, *, store: AudioStore, settings: Settings) -> Chime:
    chime = _existing(session, spec.key)
    if chime is not None and store.exists(chime.blob_sha256):
        return chime
    with store.temp_path(".wav") as wav:
        render_chime(spec, wav, settings=settings)
        blob = ingest_audio(session, store=store, source=wav, settings=settings)
    before = snapshot(chime)
    if chime is None:
        chime = Chime.model_validate(
            {
                "key": spec.key,
                "name": spec.name,
                "kind": spec.kind,
                "builtin": True,
                "blob_sha256": blob.sha256,
                "duration_ms": blob.duration_ms,
            }
        )
    else:
        chime.blob_sha256, chime.duration_ms, chime.updated_at = blob.sha256, blob.duration_ms, utc_now()
    try:
        with session.begin_nested():
            session.add(chime)
    except IntegrityError:
        # Another request generated the same chime at the same moment: use theirs.
        return _existing(session, spec.key) or chime
    record(
        session,
        actor=SYSTEM,
        action="chime.generate",
        entity_type="chime",
        entity_id=chime.id,
        before=before,
        after=snapshot(chime),
    )
    return chime


def ensure_builtin_chimes(session: Session, *, store: AudioStore, settings: Settings) -> list[Chime]:
    """Generate and store any built-in chime that is missing (row or file); idempotent."""
    for spec in BUILTIN_CHIMES:
        _ensure_one(session, spec, store=store, settings=settings)
    return list_chimes(session)


def list_chimes(session: Session) -> list[Chime]:
    return list(session.exec(select(Chime).order_by(col(Chime.kind), col(Chime.id))).all())
