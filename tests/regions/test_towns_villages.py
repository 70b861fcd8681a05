from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from broadcast.auth.models import AuditEntry, Role
from broadcast.regions.models import Town, Village
from tests.builders import City


def test_everyone_logged_in_reads_towns(
    client: TestClient, city: City, headers: dict[Role, dict[str, str]]
) -> None:
    for role in (Role.admin, Role.propagandist, Role.duty_officer):
        towns = client.get("/api/v1/towns", headers=headers[role]).json()["items"]
        assert [t["code"] for t in towns] == sorted(t.code for t in city.towns)
    assert client.get("/api/v1/towns").status_code == 401


def test_village_admin_sees_only_her_town_and_villages(
    client: TestClient, city: City, wang: dict[str, str]
) -> None:
    mine, other_town = city.towns[0], city.towns[1]
    assert [t["code"] for t in client.get("/api/v1/towns", headers=wang).json()["items"]] == [mine.code]
    assert [v["code"] for v in client.get("/api/v1/villages", headers=wang).json()["items"]] == [
        city.villages[0].code
    ]
    forbidden = client.get(f"/api/v1/towns/{other_town.code}", headers=wang)
    assert forbidden.status_code == 403
    assert other_town.code in forbidden.json()["error"]["message"]
    same_town_other_village = client.get(f"/api/v1/villages/{city.villages[1].code}", headers=wang)
    assert same_town_other_village.status_code == 403
    assert "村管理员只能查看自己负责的村" in same_town_other_village.json()["error"]["message"]
    assert client.get(f"/api/v1/villages?town={other_town.code}", headers=wang).status_code == 403
    assert client.get(f"/api/v1/villages/{city.villages[0].code}", headers=wang).status_code == 200


def test_village_list_pages_report_the_total(client: TestClient, city: City, admin: dict[str, str]) -> None:
    page = client.get("/api/v1/villages", params={"limit": 2, "offset": 1}, headers=admin).json()
    assert (page["total"], page["limit"], page["offset"]) == (len(city.villages), 2, 1)
    assert [v["code"] for v in page["items"]] == [v.code for v in city.villages[1:3]]


def test_villages_filter_by_town_and_text(client: TestClient, city: City, admin: dict[str, str]) -> None:
    town = city.towns[1]
    by_town = client.get(f"/api/v1/villages?town={town.code}", headers=admin).json()["items"]
    assert [v["code"] for v in by_town] == [v.code for v in city.villages[2:]]
    assert {v["town_name"] for v in by_town} == {town.name}
    by_text = client.get("/api/v1/villages", params={"q": city.villages[3].name}, headers=admin).json()[
        "items"
    ]
    assert [v["code"] for v in by_text] == [city.villages[3].code]
    unknown = client.get("/api/v1/villages?town=999999999", headers=admin)
    assert unknown.status_code == 422
    assert "999999999" in unknown.json()["error"]["message"]
    assert client.get("/api/v1/villages/000", headers=admin).status_code == 404


def test_town_crud_is_audited(
    client: TestClient, session: Session, city: City, admin: dict[str, str]
) -> None:
    made = client.post(
        "/api/v1/towns", json={"code": "430181900", "name": "新城街道", "kind": "subdistrict"}, headers=admin
    )
    assert made.status_code == 201, made.text
    renamed = client.patch("/api/v1/towns/430181900", json={"name": "新城区街道"}, headers=admin)
    assert renamed.json() == {"code": "430181900", "name": "新城区街道", "kind": "subdistrict"}
    assert client.delete("/api/v1/towns/430181900", headers=admin).status_code == 204
    assert client.get("/api/v1/towns/430181900", headers=admin).status_code == 404
    entries = session.exec(select(AuditEntry).where(AuditEntry.entity_type == "town")).all()
    assert [e.action for e in entries] == ["town.create", "town.update", "town.delete"]
    assert entries[1].before
    assert entries[1].before["name"] == "新城街道"
    assert entries[1].after
    assert entries[1].after["name"] == "新城区街道"


def test_town_conflicts(client: TestClient, session: Session, city: City, admin: dict[str, str]) -> None:
    town = city.towns[0]
    duplicate = client.post("/api/v1/towns", json={"code": town.code, "name": "别的镇"}, headers=admin)
    assert duplicate.status_code == 409
    assert town.code in duplicate.json()["error"]["message"]
    same_name = client.post("/api/v1/towns", json={"code": "1", "name": town.name}, headers=admin)
    assert same_name.status_code == 409
    busy = client.delete(f"/api/v1/towns/{town.code}", headers=admin)
    assert busy.status_code == 409
    assert "2 个村（社区）" in busy.json()["error"]["message"]
    assert session.exec(select(Town).where(Town.code == town.code)).first() is not None


def test_village_crud_and_move(
    client: TestClient, session: Session, city: City, admin: dict[str, str]
) -> None:
    body = {"code": "430181001999", "name": "新村", "town_code": city.towns[0].code}
    made = client.post("/api/v1/villages", json=body, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["town_name"] == city.towns[0].name
    moved = client.patch(
        "/api/v1/villages/430181001999", json={"town_code": city.towns[1].code}, headers=admin
    )
    assert moved.json()["town_code"] == city.towns[1].code
    assert client.post("/api/v1/villages", json=body, headers=admin).status_code == 409
    no_town = client.post("/api/v1/villages", json={**body, "code": "1", "town_code": "404"}, headers=admin)
    assert no_town.status_code == 422
    assert "404" in no_town.json()["error"]["message"]
    assert client.delete("/api/v1/villages/430181001999", headers=admin).status_code == 204
    busy = client.delete(f"/api/v1/villages/{city.villages[0].code}", headers=admin)
    assert busy.status_code == 409
    assert "3 个终端" in busy.json()["error"]["message"]
    actions = session.exec(select(AuditEntry.action).where(AuditEntry.entity_type == "village")).all()
    assert actions == ["village.create", "village.update", "village.delete"]
    assert session.exec(select(Village).where(Village.code == "430181001999")).first() is None


def test_only_admins_write(client: TestClient, city: City, headers: dict[Role, dict[str, str]]) -> None:
    for role in (Role.propagandist, Role.duty_officer, Role.village_admin):
        denied = client.post("/api/v1/towns", json={"code": "9", "name": "x"}, headers=headers[role])
        assert denied.status_code == 403
        assert (
            client.delete(f"/api/v1/villages/{city.villages[0].code}", headers=headers[role]).status_code
            == 403
        )
