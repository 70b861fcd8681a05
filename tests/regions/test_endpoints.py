from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from broadcast.auth.models import AuditEntry
from broadcast.regions.models import TAGS, Endpoint, EndpointTag
from tests.builders import City


def _codes(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    response = client.get("/api/v1/endpoints", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["code"] for item in response.json()["items"]]


def test_list_shape_order_and_pagination(client: TestClient, city: City, admin: dict[str, str]) -> None:
    page = client.get("/api/v1/endpoints?limit=5&offset=10", headers=admin).json()
    ordered = sorted(e.code for e in city.endpoints)
    assert page["total"] == 12
    assert [i["code"] for i in page["items"]] == ordered[10:]
    first = client.get("/api/v1/endpoints?limit=1", headers=admin).json()["items"][0]
    endpoint, village, town = city.endpoints[0], city.villages[0], city.towns[0]
    assert first == {
        "code": endpoint.code,
        "name": endpoint.name,
        "village_code": village.code,
        "village_name": village.name,
        "town_code": town.code,
        "town_name": town.name,
        "tags": ["river"],
        "latitude": 28.2,
        "longitude": 112.9,
        "status": "online",
        "last_seen_at": None,
        "volume": 80,
    }


def test_filters(client: TestClient, city: City, admin: dict[str, str]) -> None:
    second_town = {e.code for e in city.endpoints[6:]}
    assert set(_codes(client, admin, town=city.towns[1].code)) == second_town
    assert set(_codes(client, admin, village=city.villages[1].code)) == {e.code for e in city.endpoints[3:6]}
    # small_city cycles tags (river), (forest), (river, school), ()
    assert len(_codes(client, admin, tag="river")) == 6
    assert len(_codes(client, admin, tag="school", town=city.towns[1].code)) == 2
    assert _codes(client, admin, status="offline") == []
    assert _codes(client, admin, q=city.endpoints[4].code.lower()) == [city.endpoints[4].code]
    assert _codes(client, admin, q="%") == []
    total = client.get("/api/v1/endpoints?tag=river&limit=2", headers=admin).json()["total"]
    assert total == 6


def test_unknown_filter_values_are_named(client: TestClient, city: City, admin: dict[str, str]) -> None:
    cases = [
        ("town", "999", "999"),
        ("village", "888", "888"),
        ("tag", "volcano", TAGS[0]),
        ("status", "asleep", "online"),
    ]
    for param, value, hint in cases:
        response = client.get("/api/v1/endpoints", params={param: value}, headers=admin)
        assert response.status_code == 422, param
        message = response.json()["error"]["message"]
        assert value in message
        assert hint in message


def test_village_admin_scope(client: TestClient, city: City, wang: dict[str, str]) -> None:
    mine = sorted(e.code for e in city.endpoints[:3])
    assert _codes(client, wang) == mine
    assert _codes(client, wang, tag="river") == [
        c for c in mine if c in {city.endpoints[0].code, city.endpoints[2].code}
    ]
    outside = city.endpoints[5]
    for url in (
        f"/api/v1/endpoints/{outside.code}",
        f"/api/v1/endpoints?village={city.villages[1].code}",
        f"/api/v1/endpoints?town={city.towns[1].code}",
        f"/api/v1/endpoints/export?village={city.villages[2].code}",
    ):
        response = client.get(url, headers=wang)
        assert response.status_code == 403, url
        assert "负责" in response.json()["error"]["message"]
    assert client.get(f"/api/v1/endpoints/{city.endpoints[0].code}", headers=wang).status_code == 200
    exported = client.get("/api/v1/endpoints/export", headers=wang).text
    assert sorted(line.split(",")[0] for line in exported.splitlines()[1:]) == mine


def _create(client: TestClient, admin: dict[str, str], city: City, **changes: Any) -> Any:
    body = {
        "code": "NEW-001",
        "name": "水库大坝 1 号",
        "village_code": city.villages[2].code,
        "tags": ["river", "reservoir", "river"],
        "latitude": 28.1,
        "longitude": 113.0,
        "volume": 70,
    } | changes
    return client.post("/api/v1/endpoints", json=body, headers=admin)


def test_create_update_delete_audited(
    client: TestClient, session: Session, city: City, admin: dict[str, str]
) -> None:
    made = _create(client, admin, city)
    assert made.status_code == 201, made.text
    assert made.json()["tags"] == ["reservoir", "river"]
    assert made.json()["status"] == "offline"
    changed = client.patch(
        "/api/v1/endpoints/NEW-001",
        json={"tags": ["forest"], "latitude": None, "village_code": city.villages[3].code, "volume": 10},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["tags"] == ["forest"]
    assert changed.json()["latitude"] is None
    assert changed.json()["longitude"] == 113.0
    assert changed.json()["village_code"] == city.villages[3].code
    endpoint_id = session.exec(select(Endpoint.id).where(Endpoint.code == "NEW-001")).one()
    assert client.delete("/api/v1/endpoints/NEW-001", headers=admin).status_code == 204
    assert client.get("/api/v1/endpoints/NEW-001", headers=admin).status_code == 404
    assert session.exec(select(EndpointTag).where(EndpointTag.endpoint_id == endpoint_id)).all() == []
    entries = session.exec(select(AuditEntry).where(AuditEntry.entity_id == "NEW-001")).all()
    assert [e.action for e in entries] == ["endpoint.create", "endpoint.update", "endpoint.delete"]
    assert entries[1].before
    assert entries[1].before["tags"] == ["reservoir", "river"]
    assert entries[1].after
    assert entries[1].after["tags"] == ["forest"]
    assert entries[2].before
    assert entries[2].before["village_code"] == city.villages[3].code


def test_create_rejects_bad_input(
    client: TestClient, session: Session, city: City, admin: dict[str, str]
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"latitude": 91}, "latitude"),
        ({"longitude": -180.5}, "longitude"),
        ({"volume": 101}, "volume"),
        ({"tags": ["volcano"]}, "tags"),
        ({"code": "有空格 的代码"}, "code"),
    ]
    for changes, field in cases:
        response = _create(client, admin, city, **changes)
        assert response.status_code == 422, field
        assert field in response.json()["error"]["message"]
    tags = _create(client, admin, city, tags=["volcano"]).json()["error"]["message"]
    assert all(tag in tags for tag in TAGS)
    assert session.exec(select(Endpoint).where(Endpoint.name == "水库大坝 1 号")).first() is None


def test_create_conflicts_and_unknown_village(client: TestClient, city: City, admin: dict[str, str]) -> None:
    taken = city.endpoints[0].code
    duplicate = _create(client, admin, city, code=taken)
    assert duplicate.status_code == 409
    assert taken in duplicate.json()["error"]["message"]
    unknown = _create(client, admin, city, village_code="000000")
    assert unknown.status_code == 422
    assert "000000" in unknown.json()["error"]["message"]
    bad_patch = client.patch(f"/api/v1/endpoints/{taken}", json={"volume": -1}, headers=admin)
    assert bad_patch.status_code == 422
