"""The console in headless Chromium against a real server: login, navigation, filters, scope."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from broadcast.auth.models import ROLE_LABELS, Role
from tests import builders
from tests.console.conftest import ConsoleSite, SignedIn

pytestmark = pytest.mark.browser
LogIn = Callable[[Role], Page]


def _total(page: Page) -> str:
    return page.get_by_test_id("total").inner_text()


def _rows(page: Page) -> int:
    return page.locator("#results tbody tr[data-code]").count()


def test_page_without_login_goes_to_login_and_back(page: Page, console_site: ConsoleSite) -> None:
    page.goto("/console/endpoints?tag=river")
    expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Fendpoints%3Ftag%3Driver$"))
    page.fill("input[name=username]", console_site.usernames[Role.propagandist])
    page.fill("input[name=password]", builders.PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/console/endpoints\?tag=river$"))
    expect(page.get_by_test_id("total")).to_have_text(
        f"共 {console_site.count(lambda e: 'river' in e.tags)} 个终端"
    )


def test_wrong_password_shows_the_reason(page: Page, console_site: ConsoleSite) -> None:
    page.goto("/console/login")
    page.fill("input[name=username]", console_site.usernames[Role.duty_officer])
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误，或账号已停用")
    expect(page.locator("input[name=username]")).to_have_value(console_site.usernames[Role.duty_officer])


CONTENT_PAGES = ["素材库", "文字稿", "节目单"]
SCHEDULE_PAGES = ["宣传计划", "播出日历", "播出查询"]
PLAYLOG_PAGES = ["播放记录", "统计报表"]
VISIBLE_SECTIONS = {
    Role.admin: ["预警中心", "概览", "终端", *CONTENT_PAGES, *SCHEDULE_PAGES, *PLAYLOG_PAGES],
    Role.propagandist: ["概览", "终端", *CONTENT_PAGES, *SCHEDULE_PAGES, *PLAYLOG_PAGES],
    Role.duty_officer: ["预警中心", "概览", "终端", *SCHEDULE_PAGES, *PLAYLOG_PAGES],
    # A village admin's console opens on what her speakers played.
    Role.village_admin: ["播放记录", "概览", "终端", "播出查询", "统计报表"],
}
HOME_PAGES = {Role.village_admin: "播放记录"}


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_name_role_and_its_sections(log_in: LogIn, role: Role) -> None:
    page = log_in(role)
    expect(page.get_by_test_id("role-label")).to_have_text(ROLE_LABELS[role])
    expect(page.locator(".sidenav a")).to_have_text(VISIBLE_SECTIONS[role])
    home = HOME_PAGES.get(role, "概览")
    expect(page.locator(".sidenav a.active")).to_have_text(home)
    expect(page).to_have_title(re.compile(home))


def test_filter_by_tag_swaps_results_and_pushes_url(signed_in: SignedIn, console_site: ConsoleSite) -> None:
    page = signed_in(Role.admin)
    page.click(".sidenav >> text=终端")
    expect(page.get_by_test_id("total")).to_have_text(f"共 {len(console_site.endpoints)} 个终端")
    page.get_by_test_id("filter-tag").select_option(label="学校")
    schools = console_site.count(lambda e: "school" in e.tags)
    expect(page.get_by_test_id("total")).to_have_text(f"共 {schools} 个终端")
    expect(page).to_have_url(re.compile(r"/console/endpoints\?tag=school$"))
    expect(page.locator("#results tbody tr[data-code] .tag", has_text="学校")).to_have_count(schools)
    page.reload()
    expect(page.get_by_test_id("total")).to_have_text(f"共 {schools} 个终端")
    expect(page.get_by_test_id("filter-tag")).to_have_value("school")


def test_status_badges_and_local_time(signed_in: SignedIn, console_site: ConsoleSite) -> None:
    page = signed_in(Role.duty_officer, "/console/endpoints")
    page.get_by_test_id("filter-status").select_option(label="故障")
    faults = console_site.count(lambda e: e.status.value == "fault")
    expect(page.get_by_test_id("total")).to_have_text(f"共 {faults} 个终端")
    expect(page.locator("#results .badge-fault")).to_have_count(faults)
    expect(page.locator("#results .badge-fault").first).to_have_text("故障")
    expect(page.get_by_test_id("last-seen").first).to_have_text("2026-03-01 10:30:00")


def test_text_search(signed_in: SignedIn, console_site: ConsoleSite) -> None:
    page = signed_in(Role.propagandist, "/console/endpoints")
    page.get_by_test_id("filter-q").fill("新华社区")
    expected = console_site.count(lambda e: e.village == "新华社区")
    expect(page.get_by_test_id("total")).to_have_text(f"共 {expected} 个终端")
    expect(page).to_have_url(re.compile(r"q=%E6%96%B0"))
    assert _rows(page) == expected


def test_pagination(signed_in: SignedIn, console_site: ConsoleSite) -> None:
    page = signed_in(Role.admin, "/console/endpoints")
    total = len(console_site.endpoints)
    assert _rows(page) == 50
    page.get_by_test_id("next-page").click()
    expect(page.locator(".results-head .muted")).to_have_text("第 2 / 2 页")
    expect(page).to_have_url(re.compile(r"page=2"))
    assert _rows(page) == total - 50
    page.get_by_test_id("prev-page").click()
    expect(page.locator(".results-head .muted")).to_have_text("第 1 / 2 页")


def test_town_choice_reloads_villages_and_clears_the_old_one(
    signed_in: SignedIn, console_site: ConsoleSite
) -> None:
    page = signed_in(Role.admin, "/console/endpoints")
    total = page.get_by_test_id("total")
    page.get_by_test_id("filter-town").select_option(label="石桥镇")
    expect(page.locator("#village-select option")).to_have_text(["全部村（社区）", "河口村"])
    page.get_by_test_id("filter-village").select_option(label="河口村")
    expect(total).to_have_text(f"共 {console_site.count(lambda e: e.village == '河口村')} 个终端")
    page.get_by_test_id("filter-town").select_option(label="城关镇")
    expect(page.locator("#village-select option")).to_have_text(["全部村（社区）", "东风村", "新华社区"])
    expect(total).to_have_text(f"共 {console_site.count(lambda e: e.village != '河口村')} 个终端")
    page.get_by_test_id("filter-village").select_option(label="新华社区")
    expect(total).to_have_text(f"共 {console_site.count(lambda e: e.village == '新华社区')} 个终端")
    expect(page).to_have_url(re.compile(r"village=\d+"))


def test_village_admin_sees_only_her_village(signed_in: SignedIn, console_site: ConsoleSite) -> None:
    page = signed_in(Role.village_admin)
    mine = console_site.count(lambda e: e.village == console_site.scoped_village)
    expect(page.get_by_test_id("stat-endpoints").locator(".stat-value")).to_have_text(str(mine))
    expect(page.get_by_test_id("stat-towns").locator(".stat-value")).to_have_text("1")
    page.goto("/console/endpoints")
    expect(page.get_by_test_id("total")).to_have_text(f"共 {mine} 个终端")
    expect(page.locator("[data-testid=filter-town] option")).to_have_text(["全部乡镇", "石桥镇"])
    expect(page.locator("#results tbody td", has_text="东风村")).to_have_count(0)


def test_logout(signed_in: SignedIn) -> None:
    page = signed_in(Role.duty_officer)
    page.click("text=退出登录")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))


def test_expired_session_during_a_filter_goes_to_login(signed_in: SignedIn) -> None:
    page = signed_in(Role.propagandist, "/console/endpoints?tag=river")
    page.context.clear_cookies()
    page.get_by_test_id("filter-status").select_option(label="在线")
    expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Fendpoints%3Ftag%3Driver"))
    expect(page.locator("input[name=username]")).to_be_visible()


def test_screenshots(page: Page, signed_in: SignedIn, screenshot_dir: Path) -> None:
    """Renders the README's pictures (BROADCAST_SCREENSHOTS=1 writes them to docs/screenshots)."""
    page.goto("/console/login")
    page.screenshot(path=screenshot_dir / "login.png")
    signed_in(Role.admin)
    page.screenshot(path=screenshot_dir / "dashboard.png")
    signed_in(Role.admin, "/console/endpoints?tag=forest")
    expect(page.get_by_test_id("total")).to_be_visible()
    page.screenshot(path=screenshot_dir / "endpoints.png")
    for name in ("login", "dashboard", "endpoints"):
        assert (screenshot_dir / f"{name}.png").stat().st_size > 10_000
