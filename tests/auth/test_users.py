from fastapi.testclient import TestClient
from sqlmodel import Session, select

from broadcast.auth.models import AuditEntry, Role, User
from broadcast.regions.models import Village


def test_admin_creates_a_village_admin_scoped_to_villages(
    client: TestClient, headers: dict, session: Session, users: dict[Role, User]
) -> None:
    village = session.exec(select(Village)).first()
    assert village is not None
    body = {
        "username": "wang",
        "display_name": "王村管",
        "password": "a-long-password",
        "role": "village_admin",
        "village_codes": [village.code],
    }
    response = client.post("/api/v1/users", json=body, headers=headers[Role.admin])
    assert response.status_code == 201, response.text
    assert response.json()["village_codes"] == [village.code]
    assert "password" not in response.text
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "user.create")).one()
    assert entry.after is not None
    assert "password_hash" not in entry.after
    assert entry.actor_name == users[Role.admin].username


def test_duplicate_username_is_409(client: TestClient, headers: dict, users: dict[Role, User]) -> None:
    body = {
        "username": users[Role.propagandist].username,
        "display_name": "x",
        "password": "a-long-password",
        "role": "propagandist",
    }
    response = client.post("/api/v1/users", json=body, headers=headers[Role.admin])
    assert response.status_code == 409
    assert users[Role.propagandist].username in response.json()["error"]["message"]


def test_village_admin_needs_known_villages(
    client: TestClient, headers: dict, users: dict[Role, User]
) -> None:
    body = {"username": "li", "display_name": "李", "password": "a-long-password", "role": "village_admin"}
    response = client.post("/api/v1/users", json=body, headers=headers[Role.admin])
    assert response.status_code == 422
    body["village_codes"] = ["999999999999"]
    response = client.post("/api/v1/users", json=body, headers=headers[Role.admin])
    assert response.status_code == 422
    assert "999999999999" in response.json()["error"]["message"]


def test_short_password_is_a_clear_422(client: TestClient, headers: dict, users: dict[Role, User]) -> None:
    body = {"username": "zhao", "display_name": "赵", "password": "short", "role": "propagandist"}
    response = client.post("/api/v1/users", json=body, headers=headers[Role.admin])
    assert response.status_code == 422
    assert "password" in response.json()["error"]["message"]


def test_update_is_audited_with_before_and_after(
    client: TestClient, headers: dict, session: Session, users: dict[Role, User]
) -> None:
    target = users[Role.propagandist]
    response = client.patch(
        f"/api/v1/users/{target.id}", json={"display_name": "小李"}, headers=headers[Role.admin]
    )
    assert response.status_code == 200
    audit = client.get("/api/v1/audit", params={"action": "user.update"}, headers=headers[Role.admin]).json()
    assert audit["total"] == 1
    item = audit["items"][0]
    assert item["before"]["display_name"] != "小李"
    assert item["after"]["display_name"] == "小李"


def test_admin_cannot_deactivate_herself(client: TestClient, headers: dict, users: dict[Role, User]) -> None:
    admin = users[Role.admin]
    response = client.patch(
        f"/api/v1/users/{admin.id}", json={"is_active": False}, headers=headers[Role.admin]
    )
    assert response.status_code == 422


def test_unknown_user_is_404(client: TestClient, headers: dict, users: dict[Role, User]) -> None:
    assert client.get("/api/v1/users/99999", headers=headers[Role.admin]).status_code == 404
