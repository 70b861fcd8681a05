"""Console pages without a browser: login, redirects, roles, scope and the endpoint list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from broadcast.auth.models import Role, User
from broadcast.console import nav
from broadcast.console.access import require_section, safe_next
from broadcast.deps import ACCESS_COOKIE
from broadcast.regions.models import Endpoint, EndpointTag, Village
from tests import builders
from tests.console.conftest import access_token

SignIn = Callable[[User], TestClient]


def _login(client: TestClient, username: str, password: str, next_url: str = "") -> httpx.Response:
    form = {"username": username, "password": password, "next": next_url}
    return client.post("/console/login", data=form, follow_redirects=False)


def test_page_without_login_redirects_to_login_with_next(client: TestClient) -> None:
    response = client.get("/console/endpoints?tag=river", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Fendpoints%3Ftag%3Driver"


@pytest.mark.parametrize("token", ["not-a-token", "expired"])
def test_bad_or_expired_cookie_redirects_and_clears_it(
    client: TestClient, users: dict[Role, User], token: str
) -> None:
    value = access_token(users[Role.admin], minutes=-1) if token == "expired" else token
    client.cookies.set(ACCESS_COOKIE, value)
    response = client.get("/console/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")
    assert f'{ACCESS_COOKIE}=""' in response.headers["set-cookie"]


def test_htmx_request_without_login_asks_htmx_to_redirect(client: TestClient) -> None:
    headers = {"HX-Request": "true", "HX-Current-URL": "http://testserver/console/endpoints?q=x"}
    response = client.get("/console/endpoints", headers=headers, follow_redirects=False)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/console/login?next=%2Fconsole%2Fendpoints%3Fq%3Dx"


def test_login_sets_http_only_lax_cookie_and_follows_next(
    client: TestClient, users: dict[Role, User]
) -> None:
    response = _login(client, users[Role.admin].username, builders.PASSWORD, "/console/endpoints?tag=river")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/endpoints?tag=river"
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(f"{ACCESS_COOKIE}=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    page = client.get("/console/")
    assert page.status_code == 200
    assert users[Role.admin].display_name in page.text


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/console/endpoints?tag=river", "/console/endpoints?tag=river"),
        ("", "/console/"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/x", "/console/"),
        ("/\\evil.example", "/console/"),
        ("/api/v1/users", "/console/"),
        ("/console/login?next=/console/", "/console/"),
    ],
)
def test_login_only_returns_to_console_pages(target: str, expected: str) -> None:
    assert safe_next(target) == expected


def test_wrong_password_shows_message_and_no_cookie(client: TestClient, users: dict[Role, User]) -> None:
    response = _login(client, users[Role.admin].username, "wrong-password")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert "set-cookie" not in response.headers


def test_too_many_failures_show_the_lockout_message(client: TestClient, users: dict[Role, User]) -> None:
    for _ in range(5):
        _login(client, users[Role.duty_officer].username, "wrong-password")
    response = _login(client, users[Role.duty_officer].username, builders.PASSWORD)
    assert response.status_code == 429
    assert "登录失败次数过多" in response.text


def test_empty_form_asks_for_both_fields(client: TestClient) -> None:
    response = _login(client, "", "")
    assert response.status_code == 422
    assert "请输入用户名和密码" in response.text


def test_logout_clears_cookie(client: TestClient, users: dict[Role, User]) -> None:
    _login(client, users[Role.propagandist].username, builders.PASSWORD)
    assert client.get("/console/", follow_redirects=False).status_code == 200
    response = client.post("/console/logout", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"
    assert f'{ACCESS_COOKIE}=""' in response.headers["set-cookie"]
    assert client.get("/console/", follow_redirects=False).status_code == 303


@pytest.fixture
def admin_only_page(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> nav.Section:
    """A page only admins may open, as a later feature would add one."""
    section = nav.Section(key="users", title="用户管理", url="/console/users", roles=frozenset())
    monkeypatch.setattr(nav, "SECTIONS", [*nav.SECTIONS, section])

    @app.get("/console/users", dependencies=[Depends(require_section(section))])
    def users_page() -> dict[str, str]:
        return {"page": "users"}

    return section


@pytest.mark.parametrize("role", [Role.propagandist, Role.duty_officer, Role.village_admin])
def test_admin_only_section_is_hidden_and_forbidden(
    sign_in: SignIn, users: dict[Role, User], admin_only_page: nav.Section, role: Role
) -> None:
    client = sign_in(users[role])
    assert 'href="/console/users"' not in client.get("/console/").text
    response = client.get("/console/users")
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert "无权查看「用户管理」" in response.text


def test_admin_sees_and_opens_admin_only_section(
    sign_in: SignIn, users: dict[Role, User], admin_only_page: nav.Section
) -> None:
    client = sign_in(users[Role.admin])
    assert 'href="/console/users"' in client.get("/console/").text
    assert client.get("/console/users").status_code == 200


def _stat(html: str, name: str) -> str:
    block = html.split(f'data-testid="stat-{name}"', 1)[1]
    return block.split('class="stat-value">', 1)[1].split("<", 1)[0]


def test_dashboard_counts_follow_the_users_scope(sign_in: SignIn, users: dict[Role, User]) -> None:
    html = sign_in(users[Role.admin]).get("/console/").text
    assert [_stat(html, n) for n in ("towns", "villages", "endpoints", "online")] == ["2", "4", "12", "12"]
    html = sign_in(users[Role.village_admin]).get("/console/").text
    assert [_stat(html, n) for n in ("towns", "villages", "endpoints", "online")] == ["1", "1", "3", "3"]
    assert "村（社区）管理员" in html


def _rows(html: str) -> int:
    return html.count("<tr data-code=")


def test_endpoint_list_filters_with_plain_query_params(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    client = sign_in(users[Role.duty_officer])
    schools = session.exec(select(EndpointTag).where(EndpointTag.tag == "school")).all()
    response = client.get("/console/endpoints", params={"tag": "school", "town": "", "q": ""})
    assert response.status_code == 200
    assert f"共 {len(schools)} 个终端" in response.text
    assert _rows(response.text) == len(schools)
    assert "<html" in response.text


def test_htmx_filter_returns_only_the_results_fragment(sign_in: SignIn, users: dict[Role, User]) -> None:
    client = sign_in(users[Role.admin])
    response = client.get("/console/endpoints", params={"status": "online"}, headers={"HX-Request": "true"})
    assert "<html" not in response.text
    assert "共 12 个终端" in response.text
    assert response.text.count("在线</span>") == 12
    assert response.headers["vary"] == "HX-Request"
    assert response.headers["HX-Push-Url"] == "/console/endpoints?status=online"


def test_last_seen_is_shown_in_shanghai_time(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    endpoint = session.exec(select(Endpoint).order_by(col(Endpoint.code))).first()
    assert endpoint is not None
    endpoint.last_seen_at = datetime(2026, 3, 1, 23, 5, tzinfo=UTC)
    session.add(endpoint)
    session.commit()
    html = sign_in(users[Role.admin]).get("/console/endpoints", params={"q": endpoint.code}).text
    assert "2026-03-02 07:05:00" in html


def test_village_admin_sees_only_her_village(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    villages = session.exec(select(Village).order_by(col(Village.id))).all()
    client = sign_in(users[Role.village_admin])
    html = client.get("/console/endpoints").text
    assert "共 3 个终端" in html
    assert villages[0].name in html
    assert villages[1].name not in html
    response = client.get("/console/endpoints", params={"village": villages[1].code})
    assert response.status_code == 403
    assert "村管理员只能查看自己负责的村（社区）" in response.text


def test_village_options_follow_the_town(sign_in: SignIn, users: dict[Role, User], session: Session) -> None:
    villages = session.exec(select(Village).order_by(col(Village.id))).all()
    client = sign_in(users[Role.admin])
    town_code = villages[0].code[:9]
    html = client.get("/console/endpoints/villages", params={"town": town_code}).text
    assert villages[0].name in html
    assert villages[1].name in html
    assert villages[2].name not in html
    assert "<optgroup" not in html


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"status": "broken"}, 422, "未知的状态"),
        ({"tag": "beach"}, 422, "未知的标签"),
        ({"town": "999999999"}, 422, "未知的乡镇"),
        ({"page": "zero"}, 422, "请求参数有误"),
        ({"page": "0"}, 422, "请求参数有误"),
    ],
)
def test_bad_filters_render_an_error_page(
    sign_in: SignIn, users: dict[Role, User], params: dict[str, str], status: int, message: str
) -> None:
    response = sign_in(users[Role.admin]).get("/console/endpoints", params=params)
    assert response.status_code == status
    assert "text/html" in response.headers["content-type"]
    assert message in response.text


def test_page_past_the_end_is_empty_not_an_error(sign_in: SignIn, users: dict[Role, User]) -> None:
    response = sign_in(users[Role.admin]).get("/console/endpoints", params={"page": "9"})
    assert response.status_code == 200
    assert "没有符合条件的终端" in response.text


def test_unknown_console_path_is_an_html_404(sign_in: SignIn, users: dict[Role, User]) -> None:
    response = sign_in(users[Role.admin]).get("/console/nope")
    assert response.status_code == 404
    assert "页面不存在" in response.text


def test_api_errors_stay_json(client: TestClient) -> None:
    response = client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_static_files_are_served(client: TestClient) -> None:
    assert client.get("/console/static/htmx.min.js").text.startswith("var htmx=")
    assert "text/css" in client.get("/console/static/console.css").headers["content-type"]
