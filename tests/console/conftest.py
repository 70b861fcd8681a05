"""Console fixtures: a signed-in TestClient, and a real server driven by headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine
from sqlmodel import Session

from broadcast import migrations
from broadcast.auth.models import Role, User
from broadcast.auth.security import issue_access_token
from broadcast.config import Settings
from broadcast.console.nav import home_url
from broadcast.db import make_engine
from broadcast.deps import ACCESS_COOKIE
from broadcast.regions.models import EndpointStatus, Town, Village
from tests import builders
from tests.conftest import TEST_SECRET

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
LAST_SEEN = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)  # 10:30 in Asia/Shanghai


def access_token(user: User, *, minutes: int = 30) -> str:
    token, _ = issue_access_token(
        user_id=user.id or 0, role=user.role.value, secret=TEST_SECRET, minutes=minutes
    )
    return token


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    """The console runs no SQL of its own (the services it calls test both backends): SQLite only."""
    return sqlite_engine


@pytest.fixture
def sign_in(client: TestClient) -> Callable[[User], TestClient]:
    """Puts the user's access cookie on the client, as the login form would."""

    def sign_in(user: User) -> TestClient:
        client.cookies.set(ACCESS_COOKIE, access_token(user))
        return client

    return sign_in


@dataclass(frozen=True)
class SeededEndpoint:
    code: str
    name: str
    village: str
    tags: tuple[str, ...]
    status: EndpointStatus


@dataclass(frozen=True)
class ConsoleSite:
    base_url: str
    usernames: dict[Role, str]
    users: dict[Role, User]
    endpoints: list[SeededEndpoint]
    scoped_village: str

    def count(self, predicate: Callable[[SeededEndpoint], bool]) -> int:
        return sum(1 for e in self.endpoints if predicate(e))


_VILLAGES = (
    # town, village, code prefix, how many endpoints
    ("城关镇", "东风村", "DF", 56),
    ("城关镇", "新华社区", "XH", 4),
    ("石桥镇", "河口村", "HK", 5),
)
_NAMES = {
    Role.admin: ("admin", "陈志强"),
    Role.propagandist: ("xuanchuan", "李晓梅"),
    Role.duty_officer: ("zhiban", "王建国"),
    Role.village_admin: ("hekou", "张秀英"),
}


def _tags_for(prefix: str, n: int) -> tuple[str, ...]:
    if prefix == "HK":
        return ("river", "school") if n == 1 else ("river",)
    if prefix == "XH":
        return ("high_rise",)
    return tuple(tag for tag, every in (("forest", 4), ("reservoir", 7)) if n % every == 0)


def _status_for(n: int) -> EndpointStatus:
    if n % 10 == 0:
        return EndpointStatus.fault
    if n % 9 == 0:
        return EndpointStatus.offline
    return EndpointStatus.disabled if n == 13 else EndpointStatus.online


def _seed(session: Session) -> tuple[list[SeededEndpoint], dict[str, Village]]:
    towns: dict[str, Town] = {}
    villages: dict[str, Village] = {}
    seeded: list[SeededEndpoint] = []
    for town_name, village_name, prefix, count in _VILLAGES:
        if town_name not in towns:
            towns[town_name] = builders.make_town(session, name=town_name)
        village = builders.make_village(session, town=towns[town_name], name=village_name)
        villages[village_name] = village
        for n in range(1, count + 1):
            tags, status = _tags_for(prefix, n), _status_for(n)
            endpoint = builders.make_endpoint(
                session, village=village, code=f"{prefix}{n:04d}", tags=tags, status=status
            )
            endpoint.name = f"{village_name}{n}号喇叭"
            endpoint.last_seen_at = LAST_SEEN
            session.add(endpoint)
            seeded.append(SeededEndpoint(endpoint.code, endpoint.name, village_name, tags, status))
    return seeded, villages


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(base_url: str, server: uvicorn.Server) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    server.should_exit = True
    raise RuntimeError("the console test server did not answer /api/v1/health within 20 s")


@pytest.fixture(scope="package")
def console_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSite]:
    """A real uvicorn server on a free port over a migrated SQLite file holding a small city."""
    from broadcast.app import create_app

    data_dir = tmp_path_factory.mktemp("console")
    engine = make_engine(f"sqlite:///{data_dir / 'console.db'}")
    migrations.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        endpoints, villages = _seed(session)
        users: dict[Role, User] = {}
        for role, (username, display_name) in _NAMES.items():
            users[role] = builders.make_user(session, role=role, username=username)
            users[role].display_name = display_name
        builders.scope_user(session, users[Role.village_admin], [villages["河口村"]])
        session.commit()
    # Browser tests share one address, so the rate limit must leave room for a few failures.
    settings = Settings(
        data_dir=data_dir, audio_store_dir=data_dir / "store", secret_key=TEST_SECRET, login_max_failures=50
    )
    app = create_app(settings, engine=engine, upgrade_db=False)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    _wait_until_up(base_url, server)
    usernames = {role: username for role, (username, _) in _NAMES.items()}
    yield ConsoleSite(base_url, usernames, users, endpoints, scoped_village="河口村")
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the console tests. Package scope: Playwright's sync API keeps an asyncio
    loop running in this thread while it is open, which would break later tests' asyncio.run()."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is missing: install it (listed in .ci/system-deps)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, console_site: ConsoleSite) -> Iterator[Page]:
    context = browser.new_context(
        base_url=console_site.base_url,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 1280, "height": 800},
    )
    context.set_default_timeout(5000)
    page = context.new_page()
    yield page
    context.close()


class SignedIn(Protocol):
    def __call__(self, role: Role, path: str = "/console/") -> Page: ...


@pytest.fixture
def signed_in(page: Page, console_site: ConsoleSite) -> SignedIn:
    """Opens a page with the role's access cookie already set (no login form, no argon2)."""

    def signed_in(role: Role, path: str = "/console/") -> Page:
        cookie = {"name": ACCESS_COOKIE, "value": access_token(console_site.users[role])}
        page.context.add_cookies(
            [{**cookie, "url": console_site.base_url, "httpOnly": True, "sameSite": "Lax"}]
        )
        page.goto(path)
        return page

    return signed_in


@pytest.fixture
def log_in(page: Page, console_site: ConsoleSite) -> Callable[[Role], Page]:
    """Signs in through the login form, as a person would."""

    def log_in(role: Role) -> Page:
        page.goto("/console/login")
        page.fill("input[name=username]", console_site.usernames[role])
        page.fill("input[name=password]", builders.PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"**{home_url(role) or '/console/'}")
        return page

    return log_in


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/screenshots when BROADCAST_SCREENSHOTS=1, else a temporary folder."""
    if os.environ.get("BROADCAST_SCREENSHOTS") == "1":
        return Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    return tmp_path_factory.mktemp("screenshots")
