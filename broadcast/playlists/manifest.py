"""The manifest of a rendered program: what plays when, and which file it all ended up in."""

from __future__ import annotations

from typing import Any

from broadcast.content.models import AudioBlob
from broadcast.playlists.models import PlaylistRevision, Render
from broadcast.playlists.render import RenderPlan

MANIFEST_VERSION = 1


def build_manifest(
    *, revision: PlaylistRevision, render: Render, plan: RenderPlan, blob: AudioBlob
) -> dict[str, Any]:
    """Offsets and durations come from the plan (sample-exact); the program figures from the file."""
    return {
        "version": MANIFEST_VERSION,
        "render_id": render.id,
        "playlist_id": revision.playlist_id,
        "revision_id": revision.id,
        "revision_number": revision.number,
        "playlist_repeat": revision.repeat,
        "context": render.context,
        "duration_ms": plan.duration_ms,
        "items": [
            {
                "index": index,
                "position": segment.position,
                "kind": segment.kind.value,
                "ref": segment.ref,
                "audio_sha256": segment.audio_sha256,
                "start_ms": segment.start_ms,
                "duration_ms": segment.duration_ms,
                "item_pass": segment.item_pass,
                "playlist_pass": segment.playlist_pass,
            }
            for index, segment in enumerate(plan.segments)
        ],
        "program": {
            "sha256": blob.sha256,
            "size_bytes": blob.size_bytes,
            "duration_ms": blob.duration_ms,
            "sample_rate": blob.sample_rate,
            "channels": blob.channels,
            "codec": blob.codec,
            "loudness_lufs": blob.loudness_lufs,
            "true_peak_dbtp": blob.true_peak_dbtp,
        },
    }
