"""Device HTTP: authentication, the signed rundown with ETag, and program audio with Range."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from broadcast.auth.audit import CLI
from broadcast.clock import utc_now
from broadcast.content.models import Bulletin
from broadcast.content.store import AudioStore
from broadcast.dispatch.envelope import b64url_decode, format_time, verify_envelope
from broadcast.playlists.models import ItemKind, PlaylistItem, Render, RenderStatus
from broadcast.playlists.renders import context_key
from broadcast.regions.models import EndpointStatus
from broadcast.regions.tokens import issue_token
from broadcast.scheduling.models import SlotStatus
from tests.builders import City
from tests.dispatch.conftest import (
    Device,
    make_campaign,
    make_device,
    make_render,
    make_revision,
    make_slot,
    stored_program,
)

ROUTES = [
    ("get", "/device/v1/rundown"),
    ("get", "/device/v1/audio/" + "0" * 64),
    ("post", "/device/v1/events"),
]


def _error(response: object) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_authentication_errors(
    client: TestClient, session: Session, devices: list[Device], method: str, path: str
) -> None:
    call = getattr(client, method)
    assert _error(call(path)) == (401, "unauthorized")
    assert _error(call(path, headers={"Authorization": "Bearer bcd_nobody"})) == (401, "unauthorized")
    assert _error(call(path, headers={"Authorization": "Basic abc"})) == (401, "unauthorized")
    revoked, disabled = devices
    issue_token(session, endpoint=revoked.endpoint, actor=CLI)
    disabled.endpoint.status = EndpointStatus.disabled
    session.add(disabled.endpoint)
    session.commit()
    answer = call(path, headers=revoked.headers)
    assert _error(answer) == (401, "token_revoked")
    assert "吊销" in answer.json()["error"]["message"]
    assert _error(call(path, headers=disabled.headers)) == (403, "endpoint_disabled")


def _verified(
    client: TestClient, envelope: dict[str, object], last_seq: int | None = None
) -> dict[str, object]:
    published = client.get("/device/v1/keys").json()["keys"]
    public = {key["kid"]: b64url_decode(key["public_key"]) for key in published}
    return verify_envelope(envelope, public, now=utc_now(), last_seq=last_seq)


def test_rundown_lists_only_this_devices_rendered_planned_slots(
    client: TestClient, session: Session, store: AudioStore, devices: list[Device]
) -> None:
    mine, other = devices
    now = utc_now()
    blob = stored_program(session, store)
    rendered = make_campaign(session, (revision := make_revision(session)))
    make_render(session, revision, blob)
    unrendered = make_campaign(session, (pending := make_revision(session)))
    make_render(session, pending, None)
    soon = make_slot(session, endpoint=mine.endpoint, campaign=rendered, starts_at=now + timedelta(hours=1))
    playing = make_slot(
        session, endpoint=mine.endpoint, campaign=rendered, starts_at=now - timedelta(seconds=2)
    )
    for starts_at in (now - timedelta(hours=1), now + timedelta(hours=49)):
        make_slot(session, endpoint=mine.endpoint, campaign=rendered, starts_at=starts_at)
    make_slot(session, endpoint=mine.endpoint, campaign=unrendered, starts_at=now + timedelta(hours=2))
    make_slot(
        session,
        endpoint=mine.endpoint,
        campaign=rendered,
        starts_at=now + timedelta(hours=3),
        status=SlotStatus.dropped,
    )
    make_slot(session, endpoint=other.endpoint, campaign=rendered, starts_at=now + timedelta(hours=1))
    session.commit()

    answer = client.get("/device/v1/rundown", headers=mine.headers)
    assert answer.status_code == 200
    body = _verified(client, answer.json())
    assert body["type"] == "rundown"
    assert body["endpoint"] == mine.endpoint.code
    assert body["volume"] == 80
    assert [slot["id"] for slot in body["slots"]] == [playing.id, soon.id]  # type: ignore[index]
    assert body["slots"][1] == {  # type: ignore[index]
        "id": soon.id,
        "starts_at": format_time(soon.starts_at),
        "ends_at": format_time(soon.ends_at),
        "campaign_id": rendered.id,
        "revision_id": revision.id,
        "program": {
            "sha256": blob.sha256,
            "size_bytes": 4096,
            "duration_ms": 5000,
            "url": f"/device/v1/audio/{blob.sha256}",
        },
    }


def test_etag_and_304(client: TestClient, session: Session, store: AudioStore, devices: list[Device]) -> None:
    device = devices[0]
    first = client.get("/device/v1/rundown", headers=device.headers)
    etag = first.headers["ETag"]
    seq = _verified(client, first.json())["seq"]
    unchanged = client.get("/device/v1/rundown", headers={**device.headers, "If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.headers["ETag"] == etag
    again = client.get("/device/v1/rundown", headers=device.headers)
    assert again.headers["ETag"] == etag
    assert _verified(client, again.json(), last_seq=seq)
    campaign = make_campaign(session, (revision := make_revision(session)))
    make_render(session, revision, stored_program(session, store))
    make_slot(session, endpoint=device.endpoint, campaign=campaign, starts_at=utc_now() + timedelta(hours=1))
    session.commit()
    changed = client.get("/device/v1/rundown", headers={**device.headers, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    device.endpoint.volume = 30
    session.add(device.endpoint)
    session.commit()
    louder = client.get(
        "/device/v1/rundown", headers={**device.headers, "If-None-Match": changed.headers["ETag"]}
    )
    assert louder.status_code == 200
    assert louder.json()["payload"]["volume"] == 30


def test_program_rendered_per_village(
    client: TestClient, session: Session, store: AudioStore, city: City, devices: list[Device]
) -> None:
    bulletin = Bulletin(title="防火", text="{village}的村民请注意防火。", custom_fields=[])
    session.add(bulletin)
    revision = make_revision(session)
    session.flush()
    session.add(
        PlaylistItem(
            revision_id=revision.id or 0, position=0, kind=ItemKind.bulletin, bulletin_id=bulletin.id
        )
    )
    blob = stored_program(session, store)
    context = {"village": city.villages[0].code}
    session.add(
        Render(
            revision_id=revision.id or 0,
            context_key=context_key(context),
            context=context,
            status=RenderStatus.done,
            blob_sha256=blob.sha256,
            duration_ms=5000,
        )
    )
    campaign = make_campaign(session, revision)
    elsewhere = make_device(session, city.endpoints[3])  # the second village: not rendered there yet
    starts_at = utc_now() + timedelta(hours=1)
    for device in (devices[0], elsewhere):
        make_slot(session, endpoint=device.endpoint, campaign=campaign, starts_at=starts_at)
    session.commit()
    here = client.get("/device/v1/rundown", headers=devices[0].headers).json()["payload"]["slots"]
    assert [slot["program"]["sha256"] for slot in here] == [blob.sha256]
    assert client.get("/device/v1/rundown", headers=elsewhere.headers).json()["payload"]["slots"] == []


def test_program_audio_with_etag_and_range(
    client: TestClient, session: Session, store: AudioStore, devices: list[Device]
) -> None:
    blob = stored_program(session, store, size=4096)
    make_render(session, make_revision(session), blob)
    raw_material = stored_program(session, store)
    session.commit()
    url, headers = f"/device/v1/audio/{blob.sha256}", devices[0].headers
    full = client.get(url, headers=headers)
    assert full.status_code == 200
    assert full.content == store.path_for(blob.sha256).read_bytes()
    assert full.headers["ETag"] == f'"{blob.sha256}"'
    assert full.headers["content-type"] == "audio/mpeg"
    part = client.get(url, headers={**headers, "Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == full.content[100:200]
    assert part.headers["content-range"] == "bytes 100-199/4096"
    assert client.get(url, headers={**headers, "Range": "bytes=5000-"}).status_code == 416
    assert client.get(url, headers={**headers, "If-None-Match": f'"{blob.sha256}"'}).status_code == 304
    for missing in (raw_material.sha256, "0" * 64, "not-a-hash"):
        assert _error(client.get(f"/device/v1/audio/{missing}", headers=headers)) == (404, "not_found")


def test_unknown_query_parameters_are_refused(client: TestClient, devices: list[Device]) -> None:
    answer = client.get("/device/v1/rundown?endpoint=EP000001", headers=devices[0].headers)
    assert _error(answer) == (422, "invalid")
