"""The issue's "Done when", end to end over HTTP with real ffmpeg and the real offline TTS engine.

A propagandist uploads a phone recording, writes a bulletin naming the village, combines them
with the built-in chimes into a playlist played twice, renders it for one village and listens
to the program: house format, within 1 LU of the target, as long as its manifest says.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from broadcast.config import Settings
from broadcast.content.audio import measure_loudness, probe
from tests.playlists.conftest import AudioWorld, recording


def wait_for_render(
    client: TestClient, render_id: int, headers: dict[str, str], timeout_s: float = 120
) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        render = client.get(f"/api/v1/renders/{render_id}", headers=headers).json()
        if render["status"] in ("done", "failed"):
            return render
        time.sleep(0.2)
    raise AssertionError(f"render {render_id} did not finish in {timeout_s} s")


def _upload_phone_recording(world: AudioWorld, tmp_path: Path) -> dict[str, Any]:
    phone = recording(tmp_path / "手机录音.m4a", seconds=6, frequency=280, rate=8000)
    with phone.open("rb") as handle:
        response = world.client.post(
            "/api/v1/clips",
            files={"file": ("手机录音.m4a", handle, "application/octet-stream")},
            data={"title": "村口防火喊话", "tags": ["防火"]},
            headers=world.headers,
        )
    assert response.status_code == 201, response.text
    clip: dict[str, Any] = response.json()
    return clip


def test_propagandist_journey(audio_world: AudioWorld, settings: Settings, tmp_path: Path) -> None:
    client, headers = audio_world.client, audio_world.headers
    clip = _upload_phone_recording(audio_world, tmp_path)
    bulletin = client.post(
        "/api/v1/bulletins",
        json={
            "title": "防火提醒",
            "text": "{village}的村民请注意，进山不带火种，发现火情请拨打一一九。",
            "rate": 100,
        },
        headers=headers,
    ).json()
    chimes = {c["kind"]: c for c in client.get("/api/v1/chimes", headers=headers).json()}
    items = [
        {"kind": "chime", "chime_id": chimes["attention"]["id"]},
        {"kind": "bulletin", "bulletin_id": bulletin["id"]},
        {"kind": "clip", "clip_id": clip["id"]},
        {"kind": "chime", "chime_id": chimes["closing"]["id"]},
    ]
    body = {"name": "春季森林防火", "items": items, "repeat": 2}
    playlist = client.post("/api/v1/playlists", json=body, headers=headers).json()
    village = audio_world.village_codes[0]

    url = f"/api/v1/playlists/{playlist['id']}/revisions/1/renders"
    queued = client.post(url, json={"village": village}, headers=headers)
    assert queued.status_code == 202, queued.text
    render = wait_for_render(client, queued.json()["id"], headers)

    assert render["status"] == "done", render["error"]
    manifest = render["manifest"]
    assert manifest["context"] == {"village": village}
    assert [i["kind"] for i in manifest["items"]] == ["chime", "bulletin", "clip", "chime"] * 2
    audio = client.get(render["audio_url"], headers=headers)
    assert audio.status_code == 200
    program = tmp_path / "program.mp3"
    program.write_bytes(audio.content)
    info = probe(program, timeout_s=30)
    stream = info.audio_streams[0]
    assert (info.format_name, stream.codec_name, stream.sample_rate, stream.channels) == (
        "mp3",
        "mp3",
        48000,
        1,
    )
    assert abs((info.duration_ms or 0) - manifest["duration_ms"]) <= 50
    assert abs(measure_loudness(program).integrated_lufs - settings.loudness_target_lufs) <= 1.0
    again = client.post(url, json={"village": village}, headers=headers)
    assert (again.status_code, again.json()["id"]) == (200, render["id"])

    refused = client.delete(f"/api/v1/clips/{clip['id']}", headers=headers)
    assert refused.status_code == 409
    assert "春季森林防火" in refused.json()["error"]["message"]
