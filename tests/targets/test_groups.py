"""Saved groups over HTTP: CRUD, validation, references between rule groups, cycles, audit, roles."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from broadcast.auth.models import AuditEntry, Role
from broadcast.regions.models import Group, GroupMember
from tests.targets.conftest import load_city

Headers = dict[Role, dict[str, str]]


def _codes(session: Session, indices: list[int]) -> list[str]:
    endpoints = load_city(session).endpoints
    return [endpoints[i].code for i in indices]


def _create(client: TestClient, headers: Headers, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = client.post("/api/v1/groups", json=body, headers=headers[Role.propagandist])
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def _fixed(
    client: TestClient, headers: Headers, session: Session, name: str, idx: list[int]
) -> dict[str, Any]:
    return _create(client, headers, {"name": name, "kind": "fixed", "endpoint_codes": _codes(session, idx)})


def _rule(client: TestClient, headers: Headers, name: str, rule: dict[str, Any]) -> dict[str, Any]:
    return _create(client, headers, {"name": name, "kind": "rule", "rule": rule})


def _audit_actions(session: Session) -> list[str]:
    return list(session.exec(select(AuditEntry.action).order_by(col(AuditEntry.id))).all())


def test_fixed_group_lifecycle(client: TestClient, headers: Headers, session: Session) -> None:
    created = _fixed(client, headers, session, "水库周边", [0, 2, 2, 5])
    assert created["member_count"] == 3
    assert created["endpoint_codes"] == sorted(_codes(session, [0, 2, 5]))
    staff = headers[Role.duty_officer]
    changed = client.patch(
        f"/api/v1/groups/{created['id']}",
        json={"name": "水库下游", "endpoint_codes": _codes(session, [1])},
        headers=staff,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["member_count"]) == ("水库下游", 1)
    listed = client.get("/api/v1/groups", headers=staff).json()
    assert [(g["name"], g["member_count"]) for g in listed["items"]] == [("水库下游", 1)]
    assert client.delete(f"/api/v1/groups/{created['id']}", headers=staff).status_code == 204
    assert client.get(f"/api/v1/groups/{created['id']}", headers=staff).status_code == 404
    assert _audit_actions(session) == ["group.create", "group.update", "group.delete"]
    assert session.exec(select(func.count()).select_from(GroupMember)).one() == 0


def test_rule_group_counts_at_use_time(client: TestClient, headers: Headers, session: Session) -> None:
    town = load_city(session).towns[0].code
    created = _rule(client, headers, "一镇河道", {"towns": [town], "tags": ["river"]})
    assert (created["member_count"], created["endpoint_codes"]) == (3, [])
    assert created["rule"]["towns"] == [town]
    got = client.get(f"/api/v1/groups/{created['id']}", headers=headers[Role.admin]).json()
    assert got["rule"] == created["rule"]


BAD_GROUPS: list[tuple[dict[str, Any], str]] = [
    ({"name": "x", "kind": "fixed"}, "endpoint_codes"),
    ({"name": "x", "kind": "fixed", "endpoint_codes": ["EP1"], "rule": {"all": True}}, "endpoint_codes"),
    ({"name": "x", "kind": "rule"}, "rule"),
    ({"name": "x", "kind": "rule", "rule": {}}, "选择范围为空"),
    ({"name": " ", "kind": "rule", "rule": {"all": True}}, "name"),
    ({"name": "x", "kind": "rule", "rule": {"all": True, "colour": "red"}}, "colour"),
    ({"name": "x", "kind": "rule", "rule": {"tags": ["lava"]}}, "lava"),
    ({"name": "x", "kind": "rule", "rule": {"groups": ["x"]}}, "分组 x"),
    ({"name": "x", "kind": "fixed", "endpoint_codes": ["EP-nope", "EP-gone"]}, "EP-nope、EP-gone"),
]


def test_bad_groups_are_refused_and_nothing_is_stored(
    client: TestClient, headers: Headers, session: Session
) -> None:
    for body, fragment in BAD_GROUPS:
        error = _create(client, headers, body, status=422)["error"]
        assert fragment in error["message"], body
    assert session.exec(select(func.count()).select_from(Group)).one() == 0
    assert _audit_actions(session) == []


def test_duplicate_name_is_a_conflict(client: TestClient, headers: Headers, session: Session) -> None:
    _fixed(client, headers, session, "学校", [2])
    error = _create(client, headers, {"name": "学校", "kind": "rule", "rule": {"all": True}}, status=409)[
        "error"
    ]
    assert "学校" in error["message"]


def test_kind_cannot_change_through_update(client: TestClient, headers: Headers, session: Session) -> None:
    fixed = _fixed(client, headers, session, "固定", [0])
    rule = _rule(client, headers, "规则", {"all": True})
    staff = headers[Role.propagandist]
    bad_fixed = client.patch(f"/api/v1/groups/{fixed['id']}", json={"rule": {"all": True}}, headers=staff)
    bad_rule = client.patch(f"/api/v1/groups/{rule['id']}", json={"endpoint_codes": ["x"]}, headers=staff)
    assert (bad_fixed.status_code, bad_rule.status_code) == (422, 422)


def test_cycles_between_rule_groups_are_refused(
    client: TestClient, headers: Headers, session: Session
) -> None:
    _fixed(client, headers, session, "F", [0, 1])
    a = _rule(client, headers, "A", {"groups": ["F"]})
    _rule(client, headers, "B", {"groups": ["A"], "tags": ["forest"]})
    staff = headers[Role.propagandist]
    for rule, cycle in [
        ({"groups": ["B"]}, "A → B → A"),
        ({"exclude": {"groups": ["A"]}, "all": True}, "A → A"),
    ]:
        response = client.patch(f"/api/v1/groups/{a['id']}", json={"rule": rule}, headers=staff)
        assert response.status_code == 422, response.text
        assert cycle in response.json()["error"]["message"]
    assert client.get(f"/api/v1/groups/{a['id']}", headers=staff).json()["rule"]["groups"] == ["F"]


def test_referenced_group_cannot_be_renamed_or_deleted(
    client: TestClient, headers: Headers, session: Session
) -> None:
    fixed = _fixed(client, headers, session, "F", [0])
    rule = _rule(client, headers, "R", {"all": True, "exclude": {"groups": ["F"]}})
    staff = headers[Role.propagandist]
    renamed = client.patch(f"/api/v1/groups/{fixed['id']}", json={"name": "G"}, headers=staff)
    deleted = client.delete(f"/api/v1/groups/{fixed['id']}", headers=staff)
    assert (renamed.status_code, deleted.status_code) == (409, 409)
    assert deleted.json()["error"]["details"]["referenced_by"] == ["R"]
    assert client.delete(f"/api/v1/groups/{rule['id']}", headers=staff).status_code == 204
    assert client.delete(f"/api/v1/groups/{fixed['id']}", headers=staff).status_code == 204


def test_audit_records_members_before_and_after(
    client: TestClient, headers: Headers, session: Session
) -> None:
    group = _fixed(client, headers, session, "F", [0])
    staff = headers[Role.propagandist]
    client.patch(
        f"/api/v1/groups/{group['id']}", json={"endpoint_codes": _codes(session, [1])}, headers=staff
    )
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "group.update")).one()
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["endpoint_codes"], entry.after["endpoint_codes"]) == (
        _codes(session, [0]),
        _codes(session, [1]),
    )
    assert entry.entity_id == str(group["id"])


def test_village_admin_is_forbidden_everywhere(
    client: TestClient, headers: Headers, session: Session
) -> None:
    group = _fixed(client, headers, session, "F", [0])
    village_admin = headers[Role.village_admin]
    calls = [
        client.post("/api/v1/targets/preview", json={"all": True}, headers=village_admin),
        client.get("/api/v1/groups", headers=village_admin),
        client.get(f"/api/v1/groups/{group['id']}", headers=village_admin),
        client.post(
            "/api/v1/groups", json={"name": "y", "kind": "rule", "rule": {"all": True}}, headers=village_admin
        ),
        client.patch(f"/api/v1/groups/{group['id']}", json={"name": "z"}, headers=village_admin),
        client.delete(f"/api/v1/groups/{group['id']}", headers=village_admin),
    ]
    assert [c.status_code for c in calls] == [403] * 6
    assert client.post("/api/v1/targets/preview", json={"all": True}).status_code == 401
