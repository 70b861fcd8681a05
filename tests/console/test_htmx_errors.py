"""A request htmx does not swap (busy database, 5xx, expired login, no network) says why at the top."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, Route, expect
from sqlalchemy.exc import OperationalError

from broadcast.auth.models import Role, User
from broadcast.regions import service as regions
from tests.console.conftest import SignedIn

SignIn = Callable[[User], TestClient]
VILLAGES = re.compile(r"/console/endpoints/villages")


def test_every_console_page_carries_the_notice_and_its_handler(
    client: TestClient, sign_in: SignIn, users: dict[Role, User]
) -> None:
    for page in (client.get("/console/login"), sign_in(users[Role.admin]).get("/console/endpoints")):
        assert page.status_code == 200
        assert '<script src="/console/static/console.js?v=' in page.text
        assert re.search(r'<div id="request-error"[^>]* role="alert"[^>]* hidden>', page.text)
    script = client.get("/console/static/console.js")
    assert script.status_code == 200
    assert "htmx:responseError" in script.text
    assert "htmx:sendError" in script.text


def choose_town(page: Page, town: str) -> None:
    page.get_by_test_id("filter-town").select_option(label=town)


@pytest.mark.browser
def test_busy_database_shows_the_servers_message_until_the_retry_works(
    signed_in: SignedIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = signed_in(Role.admin, "/console/endpoints")
    notice = page.get_by_role("alert")
    expect(notice).to_be_hidden()

    def locked(*_: object, **__: object) -> None:
        raise OperationalError("SELECT villages ...", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(regions, "list_villages", locked)
    choose_town(page, "石桥镇")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("数据库繁忙，本次请求未保存任何内容：请 2 秒后重试")

    monkeypatch.undo()
    choose_town(page, "城关镇")
    expect(page.locator("#village-select")).to_contain_text("东风村")
    expect(notice).to_be_hidden()


def fulfil(status: int, content_type: str, body: str) -> Callable[[Route], None]:
    return lambda route: route.fulfill(status=status, content_type=content_type, body=body)


@pytest.mark.browser
@pytest.mark.parametrize(
    ("status", "content_type", "body", "expected"),
    [
        (503, "text/plain", "busy", "系统繁忙，请稍后重试"),
        (401, "application/json", "{}", "登录已过期，请重新登录 前往登录页"),
        (403, "text/plain", "", "没有权限执行此操作"),
        (500, "text/plain", "Internal Server Error", "操作失败（HTTP 状态码 500），请刷新后重试"),
        (422, "application/json", json.dumps({"detail": "日期格式有误"}), "日期格式有误"),
        (
            409,
            "text/html; charset=utf-8",
            '<main><h1 data-testid="error-message">与已有数据冲突，请刷新后重试</h1></main>',
            "与已有数据冲突，请刷新后重试",
        ),
    ],
)
def test_refused_request_says_why(
    signed_in: SignedIn, status: int, content_type: str, body: str, expected: str
) -> None:
    page = signed_in(Role.admin, "/console/endpoints")
    page.route(VILLAGES, fulfil(status, content_type, body))
    choose_town(page, "石桥镇")
    notice = page.get_by_role("alert")
    expect(notice.locator("[data-role=message]")).to_have_text(expected)
    if status == 401:
        expect(notice.get_by_role("link", name="前往登录页")).to_have_attribute(
            "href", "/console/login?next=%2Fconsole%2Fendpoints"
        )
    notice.get_by_role("button", name="关闭").click()
    expect(notice).to_be_hidden()


@pytest.mark.browser
def test_lost_connection_says_check_the_network(signed_in: SignedIn) -> None:
    page = signed_in(Role.admin, "/console/endpoints")
    page.route(VILLAGES, lambda route: route.abort("connectionrefused"))
    choose_town(page, "石桥镇")
    expect(page.get_by_role("alert").locator("[data-role=message]")).to_have_text(
        "无法连接服务器，请检查网络后重试"
    )


@pytest.mark.browser
def test_form_error_fragment_is_swapped_without_the_notice(signed_in: SignedIn) -> None:
    page = signed_in(Role.propagandist, "/console/library")
    page.get_by_test_id("upload-file").set_input_files(
        {"name": "录音.mp3", "mimeType": "audio/mpeg", "buffer": "不是录音".encode()}
    )
    page.get_by_test_id("upload-title").fill("假录音")
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("upload-error")).to_contain_text("无法识别的文件内容")
    expect(page.get_by_test_id("request-error")).to_be_hidden()
