"""Rendering a 10-minute, 20-item playlist, against one ffmpeg concat + loudnorm command.

Setup (not timed): a fresh SQLite database and store, four generated recordings ingested as
clips, the built-in chimes, six bulletins naming the village. The playlist is attention chime,
twelve clip plays and six bulletins interleaved, closing chime. Each render runs in its own
process so its peak memory can be read from ``getrusage``:

- cold: revision 1, the TTS cache empty, so every bulletin is synthesised and normalised;
- warm: revision 2 with the same items, so every bulletin comes from the TTS cache.

The baseline, measured in the same run, is a single ffmpeg command that concatenates the same
20 decoded house-format files (the bulletins as the cold render spoke them) and runs one-pass
loudnorm into an MP3: no manifest, no sample-exact offsets, no two-pass accuracy.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from broadcast import migrations
from broadcast.auth.audit import CLI
from broadcast.config import PROJECT_ROOT, Settings
from broadcast.content.chimes import ensure_builtin_chimes
from broadcast.content.models import AudioBlob, ChimeKind
from broadcast.content.store import get_store
from broadcast.db import make_engine, transaction
from broadcast.playlists import jobs, renders, service
from broadcast.playlists.schemas import ItemIn, PlaylistCreate, RenderRequest, RevisionIn
from tests import builders
from tests.bench import Row
from tests.playlists.conftest import make_bulletin, recording, stored_clip

BENCH = "render 10-min 20-item playlist"
BASELINE = "one ffmpeg concat+loudnorm"
CLIP_SECONDS = {"long": 150.0, "b": 40.0, "c": 30.0, "d": 25.0}
CLIP_ORDER = ["long", "b", "c", "d", "b", "c", "d", "b", "c", "d", "c", "d"]
BULLETINS = [
    "{village}的村民请注意，近期天气干燥，森林火险等级高，进山请不要携带火种，严禁野外用火。",
    "{village}的村民请注意，清明祭扫请文明祭祀，不烧纸钱、不放鞭炮，发现火情请立即拨打一一九。",
    "{village}的村民请注意，雨季将至，请检查房屋和排水沟，住在山边的群众要留意山体滑坡的迹象。",
    "{village}的村民请注意，河道水位上涨时不要下河游泳、捕鱼，请看护好家中的儿童和老人。",
    "{village}的村民请注意，冬季用电取暖要注意安全，不要私拉乱接电线，出门前请关闭电器。",
    "{village}的村民请注意，接到自称公检法的电话要求转账，一律是诈骗，请及时拨打一一零咨询。",
]
MB = 1024 * 1024
BROADCAST_DAY = date(2026, 4, 1)


def _settings(root: Path) -> Settings:
    return Settings(
        data_dir=root / "data",
        audio_store_dir=root / "store",
        database_url=f"sqlite:///{root / 'bench.db'}",
    )


def _items(session: Session, settings: Settings, root: Path) -> list[ItemIn]:
    store = get_store(settings)
    chimes = {c.kind: c for c in ensure_builtin_chimes(session, store=store, settings=settings)}
    clips = {
        name: stored_clip(
            session, store=store, settings=settings, source=recording(root / f"{name}.wav", seconds=s)
        )
        for name, s in CLIP_SECONDS.items()
    }
    bulletins = [make_bulletin(session, text=text) for text in BULLETINS]
    middle = [ItemIn(kind="clip", clip_id=clips[name].id) for name in CLIP_ORDER]
    for index, bulletin in enumerate(bulletins):
        middle.insert(1 + 2 * index, ItemIn(kind="bulletin", bulletin_id=bulletin.id))
    return [
        ItemIn(kind="chime", chime_id=chimes[ChimeKind.attention].id),
        *middle,
        ItemIn(kind="chime", chime_id=chimes[ChimeKind.closing].id),
    ]


def _setup(settings: Settings, root: Path) -> tuple[int, int]:
    """Two queued renders of two identical revisions; returns their ids."""
    engine = make_engine(settings.effective_database_url)
    migrations.upgrade(engine)
    with transaction(engine) as session:
        village = builders.small_city(session).villages[0]
        items = _items(session, settings, root)
        playlist = service.create_playlist(
            session, data=PlaylistCreate(name="基准节目", items=items), actor=CLI
        )
        service.create_revision(session, playlist=playlist, data=RevisionIn(items=items), actor=CLI)
        ids = []
        for number in (1, 2):
            revision = service.get_revision_or_raise(session, playlist=playlist, number=number)
            request = RenderRequest(village=village.code)
            render = renders.request_render(
                session, revision=revision, data=request, actor=CLI, today=BROADCAST_DAY
            )
            ids.append(render.id or 0)
    engine.dispose()
    return ids[0], ids[1]


def _child(root: Path, render_id: int) -> None:
    """Run one render in this process and print its time and memory as JSON.

    ``tracemalloc`` counts what Python itself holds during the render (the renderer streams PCM
    in one-second chunks, so this stays far below any input's decoded size); the RSS high-water
    mark is the whole process, imports included. ffmpeg runs in child processes of its own.
    """
    settings = _settings(root)
    engine = make_engine(settings.effective_database_url)
    if not jobs.claim(engine, render_id):
        raise SystemExit(f"render {render_id} was not queued")
    tracemalloc.start()
    start = time.perf_counter()
    render = jobs.execute(engine, render_id, settings=settings)
    elapsed = time.perf_counter() - start
    _, heap_peak = tracemalloc.get_traced_memory()
    if render.error:
        raise SystemExit(render.error)
    result = {
        "elapsed_s": elapsed,
        "duration_ms": render.duration_ms,
        "heap_peak_mb": heap_peak / MB,
        "rss_hwm_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "manifest": render.manifest,
    }
    print(json.dumps(result))


def _render_in_child(root: Path, render_id: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "tests.bench.bench_render", str(root), str(render_id)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"render {render_id} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _baseline(settings: Settings, manifest: dict[str, Any], out: Path) -> float:
    store = get_store(settings)
    inputs = [store.path_for(item["audio_sha256"]) for item in manifest["items"]]
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    for path in inputs:
        argv += ["-i", str(path)]
    chain = "".join(f"[{i}:a]" for i in range(len(inputs)))
    graph = f"{chain}concat=n={len(inputs)}:v=0:a=1,loudnorm=I=-16:TP=-1.5:LRA=11"
    argv += [
        "-filter_complex",
        graph,
        "-ar",
        "48000",
        "-ac",
        "1",
        "-c:a",
        "libmp3lame",
        "-b:a",
        "128k",
        str(out),
    ]
    start = time.perf_counter()
    subprocess.run(argv, check=True, timeout=600)
    return time.perf_counter() - start


def _largest_input_pcm_mb(settings: Settings, manifest: dict[str, Any]) -> float:
    engine = make_engine(settings.effective_database_url)
    shas = {item["audio_sha256"] for item in manifest["items"]}
    with Session(engine) as session:
        blobs = session.exec(select(AudioBlob).where(col(AudioBlob.sha256).in_(shas))).all()
        longest_ms = max(blob.duration_ms for blob in blobs)
    engine.dispose()
    return longest_ms / 1000 * settings.audio_sample_rate * 2 / MB


def _case(label: str, result: dict[str, Any], largest_mb: float) -> str:
    seconds = (result["duration_ms"] or 0) / 1000
    return (
        f"{label} vs {BASELINE}: {seconds:.0f} s program, RTF {result['elapsed_s'] / seconds:.3f}; "
        f"Python heap peak {result['heap_peak_mb']:.1f} MB, process RSS peak {result['rss_hwm_mb']:.0f} MB; "
        f"largest input as PCM {largest_mb:.1f} MB, whole program as PCM {seconds * 96000 / MB:.0f} MB"
    )


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        root = Path(tmp)
        settings = _settings(root)
        cold_id, warm_id = _setup(settings, root)
        cold = _render_in_child(root, cold_id)
        warm = _render_in_child(root, warm_id)
        baseline_s = _baseline(settings, cold["manifest"], root / "baseline.mp3")
        largest = _largest_input_pcm_mb(settings, cold["manifest"])
    return [
        Row(
            benchmark=BENCH,
            case=_case("cold TTS cache", cold, largest),
            measured_s=cold["elapsed_s"],
            baseline_s=baseline_s,
        ),
        Row(
            benchmark=BENCH,
            case=_case("warm TTS cache", warm, largest),
            measured_s=warm["elapsed_s"],
            baseline_s=baseline_s,
        ),
    ]


if __name__ == "__main__":
    _child(Path(sys.argv[1]), int(sys.argv[2]))
