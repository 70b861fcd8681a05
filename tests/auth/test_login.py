from fastapi.testclient import TestClient

from broadcast.auth.models import Role, User
from tests.builders import PASSWORD


def _login(client: TestClient, username: str, password: str) -> tuple[int, dict[str, object]]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    return response.status_code, response.json()


def test_login_returns_a_bearer_token_that_opens_me(client: TestClient, users: dict[Role, User]) -> None:
    status, body = _login(client, users[Role.propagandist].username, PASSWORD)
    assert status == 200
    assert body["token_type"] == "bearer"
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["role"] == "propagandist"


def test_wrong_password_is_401_with_a_message(client: TestClient, users: dict[Role, User]) -> None:
    status, body = _login(client, users[Role.admin].username, "wrong-password")
    assert status == 401
    assert "用户名或密码错误" in body["error"]["message"]  # type: ignore[index]


def test_repeated_failures_are_rate_limited_even_with_the_right_password(
    client: TestClient, users: dict[Role, User]
) -> None:
    name = users[Role.admin].username
    for _ in range(5):
        assert _login(client, name, "nope")[0] == 401
    status, body = _login(client, name, PASSWORD)
    assert status == 429
    assert "次数过多" in body["error"]["message"]  # type: ignore[index]


def test_success_clears_the_failure_count(client: TestClient, users: dict[Role, User]) -> None:
    name = users[Role.admin].username
    for _ in range(4):
        _login(client, name, "nope")
    assert _login(client, name, PASSWORD)[0] == 200
    for _ in range(4):
        _login(client, name, "nope")
    assert _login(client, name, PASSWORD)[0] == 200


def test_inactive_user_cannot_log_in(client: TestClient, users: dict[Role, User], headers: dict) -> None:
    target = users[Role.duty_officer]
    client.patch(f"/api/v1/users/{target.id}", json={"is_active": False}, headers=headers[Role.admin])
    assert _login(client, target.username, PASSWORD)[0] == 401
    assert client.get("/api/v1/auth/me", headers=headers[Role.duty_officer]).status_code == 401


def test_forged_and_garbage_tokens_are_401(client: TestClient) -> None:
    for token in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."]:
        response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert "重新登录" in response.json()["error"]["message"]


def test_expired_token_is_401(client: TestClient, users: dict[Role, User]) -> None:
    from broadcast.auth.security import issue_access_token
    from tests.conftest import TEST_SECRET

    token, _ = issue_access_token(
        user_id=users[Role.admin].id or 0, role="admin", secret=TEST_SECRET, minutes=-1
    )
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
