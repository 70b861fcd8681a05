"""Asking for renders over HTTP: template values checked up front, one render per distinct program."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from broadcast.auth.models import AuditEntry, Role, User
from broadcast.playlists.models import Render
from broadcast.regions.models import Village
from tests.playlists.conftest import make_bulletin, make_clip, playlist_body

Headers = dict[Role, dict[str, str]]


@pytest.fixture
def world(session: Session, users: dict[Role, User]) -> dict[str, Any]:
    clip = make_clip(session)
    per_village = make_bulletin(session, text="{village}的村民请注意，{date}{weekday}有大风。")
    per_town = make_bulletin(session, text="{town}今日防火等级：{level}。", fields=["level", "unused"])
    villages = list(session.exec(select(Village).order_by(Village.id)).all())
    session.commit()
    return {"clip": clip.id, "village": per_village.id, "town": per_town.id, "villages": villages}


def _playlist(client: TestClient, headers: Headers, items: list[dict[str, Any]]) -> str:
    response = client.post("/api/v1/playlists", json=playlist_body(items), headers=headers[Role.propagandist])
    assert response.status_code == 201, response.text
    return f"/api/v1/playlists/{response.json()['id']}/revisions/1/renders"


def _render(client: TestClient, headers: Headers, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, json=body, headers=headers[Role.propagandist])


def test_render_is_queued_and_readable(
    client: TestClient, headers: Headers, world: dict[str, Any], session: Session
) -> None:
    url = _playlist(client, headers, [{"kind": "clip", "clip_id": world["clip"]}])

    response = _render(client, headers, url, {})

    assert response.status_code == 202, response.text
    render = response.json()
    assert (render["status"], render["revision_number"], render["audio_url"]) == ("queued", 1, None)
    got = client.get(f"/api/v1/renders/{render['id']}", headers=headers[Role.admin])
    assert got.json() == render
    assert session.exec(
        select(AuditEntry).where(AuditEntry.action == "render.request")
    ).one().entity_id == str(render["id"])


def test_one_render_per_distinct_program(client: TestClient, headers: Headers, world: dict[str, Any]) -> None:
    v1, v2, v3 = (v.code for v in world["villages"][:3])
    clip_only = _playlist(client, headers, [{"kind": "clip", "clip_id": world["clip"]}])
    per_town = _playlist(client, headers, [{"kind": "bulletin", "bulletin_id": world["town"]}])
    per_village = _playlist(client, headers, [{"kind": "bulletin", "bulletin_id": world["village"]}])
    level = {"level": "三级", "unused": "x", "extra": "y"}

    clip_ids = {
        _render(client, headers, clip_only, {"village": v, "date": "2026-05-01"}).json()["id"]
        for v in (v1, v3)
    }
    town_renders = [
        _render(client, headers, per_town, {"village": v, "fields": level}).json() for v in (v1, v2, v3)
    ]
    day = {"village": v1, "date": "2026-05-01"}
    village_ids = [
        _render(client, headers, per_village, body).json()["id"]
        for body in (day, day, {**day, "village": v2})
    ]

    assert len(clip_ids) == 1
    assert [r["id"] for r in town_renders][:2] == [town_renders[0]["id"]] * 2
    assert town_renders[2]["id"] != town_renders[0]["id"]
    assert town_renders[0]["context"] == {"town": world["villages"][0].code[:9], "fields": {"level": "三级"}}
    assert village_ids[0] == village_ids[1] != village_ids[2]


@pytest.mark.parametrize(
    ("bulletin", "body", "status", "needle"),
    [
        pytest.param("village", {"village": "999999999999"}, 422, "999999999999", id="unknown village"),
        pytest.param("village", {}, 422, "village", id="village needed"),
        pytest.param("town", {"village": None}, 422, "village", id="town needs a village"),
        pytest.param("town", {"fields": {"level": "  "}}, 422, "level", id="blank custom field"),
        pytest.param("village", {"date": "2026-02-30"}, 422, "date", id="impossible date"),
        pytest.param("village", {"fields": {"1bad": "x"}}, 422, "1bad", id="bad field name"),
    ],
)
def test_bad_render_requests(
    client: TestClient,
    headers: Headers,
    world: dict[str, Any],
    session: Session,
    bulletin: str,
    body: dict[str, Any],
    status: int,
    needle: str,
) -> None:
    url = _playlist(client, headers, [{"kind": "bulletin", "bulletin_id": world[bulletin]}])
    if bulletin == "town" and "village" not in body:
        body = {**body, "village": world["villages"][0].code}

    response = _render(client, headers, url, body)

    assert response.status_code == status, response.text
    assert needle in response.text
    assert session.exec(select(Render)).all() == []


def test_render_of_unknown_things(client: TestClient, headers: Headers, world: dict[str, Any]) -> None:
    url = _playlist(client, headers, [{"kind": "clip", "clip_id": world["clip"]}])
    admin, duty = headers[Role.admin], headers[Role.duty_officer]

    assert (
        client.post(url.replace("/revisions/1/", "/revisions/2/"), json={}, headers=admin).status_code == 404
    )
    assert (
        client.post("/api/v1/playlists/9999/revisions/1/renders", json={}, headers=admin).status_code == 404
    )
    assert client.get("/api/v1/renders/9999", headers=admin).status_code == 404
    assert client.post(url, json={}, headers=duty).status_code == 403
