"""Xiao Li's forest-fire campaign (journey 1, scheduling part) in headless Chromium against a real
server: pick the forest endpoints outside the sub-districts and watch the count, create the daily
06:40/12:10/18:20 campaign, see it collide with the drowning campaign on submit, shift the season to
1 October, have the admin approve it, then check the calendar and the mountain village's why view."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect
from sqlmodel import Session

from broadcast import migrations
from broadcast.auth.models import Role, User
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.db import make_engine
from broadcast.playlists.models import Playlist
from broadcast.regions.models import Town, TownKind
from broadcast.scheduling.models import CampaignStatus
from tests import builders
from tests.conftest import TEST_SECRET
from tests.console.conftest import ConsoleSite, SignedIn, _free_port, _wait_until_up
from tests.console.test_content_browser import snapshot
from tests.scheduling.campaign_builders import playlist_revision
from tests.scheduling.rundown_builders import make_campaign

pytestmark = pytest.mark.browser
YEAR = utc_now().year + 1
SUBDISTRICT, TOWN = "430181001", "430181002"
# village name, town code, code prefix, endpoints, tags of endpoint n
VILLAGES = (
    ("新华社区", SUBDISTRICT, "XH", 8, lambda n: ("forest",) if n % 2 == 0 else ()),
    ("青山村", TOWN, "QS", 20, lambda n: ("forest", "river") if n % 4 == 0 else ("forest",)),
    ("河口村", TOWN, "HK", 10, lambda n: ("river", "forest") if n <= 3 else ("river",)),
)
FOREST, FOREST_OUTSIDE_SUBDISTRICTS, SHARED_WITH_DROWNING = 27, 23, 8


def _seed(session: Session) -> dict[Role, User]:
    towns = {
        SUBDISTRICT: Town(code=SUBDISTRICT, name="城关街道", kind=TownKind.subdistrict),
        TOWN: Town(code=TOWN, name="石桥镇"),
    }
    session.add_all(towns.values())
    session.flush()
    for name, town_code, prefix, count, tags in VILLAGES:
        village = builders.make_village(session, town=towns[town_code], name=name)
        for n in range(1, count + 1):
            builders.make_endpoint(session, village=village, code=f"{prefix}{n:04d}", tags=tags(n))
    users = {
        Role.propagandist: builders.make_user(session, role=Role.propagandist),
        Role.admin: builders.make_user(session, role=Role.admin),
    }
    users[Role.propagandist].display_name, users[Role.admin].display_name = "李晓梅", "陈志强"
    forest = playlist_revision(session, duration_ms=60_000)
    drowning = playlist_revision(session, duration_ms=90_000)
    _rename_playlist(session, forest.playlist_id, "秋季森林防火")
    _rename_playlist(session, drowning.playlist_id, "防溺水提醒")
    make_campaign(
        session,
        revision=drowning,
        selector={"tags": ["river"]},
        times=["12:10"],
        season=(date(YEAR, 5, 1), date(YEAR, 9, 30)),
        windows=("06:30-07:30", "12:00-12:30", "18:00-19:00"),
        status=CampaignStatus.approved,
        name="防溺水",
    )
    return users


def _rename_playlist(session: Session, playlist_id: int, name: str) -> None:
    session.get_one(Playlist, playlist_id).name = name
    session.flush()


@pytest.fixture(scope="module")
def console_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSite]:
    """A server over a city with a sub-district, forest villages and an approved drowning campaign."""
    from broadcast.app import create_app

    data_dir = tmp_path_factory.mktemp("campaign-site")
    engine = make_engine(f"sqlite:///{data_dir / 'console.db'}")
    migrations.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        users = _seed(session)
        session.commit()
    settings = Settings(data_dir=data_dir, secret_key=TEST_SECRET, render_workers=0)
    app = create_app(settings, engine=engine, upgrade_db=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.config.port}"
    _wait_until_up(base_url, server)
    yield ConsoleSite(base_url, {}, users, [], scoped_village="")
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def pick_targets(page: Page) -> None:
    count = page.get_by_test_id("target-count")
    expect(count).to_have_text(re.compile("尚未选择播发范围"))
    page.locator("label:has([data-testid=tag-forest])").click()
    expect(count).to_have_text(f"将覆盖 {FOREST} 个终端")
    page.get_by_test_id("exclusions-toggle").click()
    page.get_by_test_id(f"exclude_town-{SUBDISTRICT}").check()
    expect(count).to_have_text(f"将覆盖 {FOREST_OUTSIDE_SUBDISTRICTS} 个终端")
    expect(page.get_by_test_id("town-count")).to_have_text([f"石桥镇{FOREST_OUTSIDE_SUBDISTRICTS}"])


def create_campaign(page: Page, screenshot_dir: Path) -> None:
    page.get_by_test_id("new-campaign").click()
    page.get_by_test_id("campaign-name").fill("秋季森林防火")
    page.get_by_test_id("campaign-playlist").select_option(label="秋季森林防火")
    expect(page.get_by_test_id("campaign-revision")).to_have_value("1")
    pick_targets(page)
    page.get_by_test_id("season-first").fill(f"{YEAR}-09-25")
    page.get_by_test_id("season-last").fill(f"{YEAR + 1}-04-30")
    page.get_by_test_id("campaign-times").fill("06:40，12:10，18:20")
    expect(page.get_by_test_id("campaign-priority")).to_have_value("5")
    snapshot(page, screenshot_dir / "campaigns.png")
    page.get_by_test_id("campaign-save").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("草稿")
    expect(page.get_by_test_id("campaign-rule")).to_contain_text("每天 06:40、12:10、18:20")
    expect(page.get_by_test_id("campaign-target")).to_have_text(
        f"标签：林区；排除 乡镇（街道）：城关街道（街道），共 {FOREST_OUTSIDE_SUBDISTRICTS} 个终端"
    )


def submit_and_shift_the_season(page: Page) -> None:
    page.get_by_test_id("action-submit").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("待审批")
    expect(page.get_by_test_id("conflict-summary")).to_have_text("与 1 个计划冲突")
    row = page.get_by_test_id("conflict-row")
    expect(row.locator("td").first).to_have_text("防溺水")
    expect(page.get_by_test_id("conflict-endpoints")).to_have_text(str(SHARED_WITH_DROWNING))
    expect(page.get_by_test_id("conflict-times")).to_have_text("12:10")
    expect(page.get_by_test_id("action-approve")).to_have_count(0)
    page.get_by_test_id("action-withdraw").click()
    page.get_by_test_id("campaign-edit").click()
    expect(page.get_by_test_id("campaign-times")).to_have_value("06:40，12:10，18:20")
    expect(page.get_by_test_id("target-count")).to_have_text(f"将覆盖 {FOREST_OUTSIDE_SUBDISTRICTS} 个终端")
    page.get_by_test_id("season-first").fill(f"{YEAR}-10-01")
    page.get_by_test_id("campaign-save").click()
    expect(page.get_by_test_id("campaign-notice")).to_have_text("已保存修改")
    page.get_by_test_id("action-submit").click()
    expect(page.get_by_test_id("conflict-summary")).to_have_text("未发现与其他计划冲突")


def check_calendar_and_why(page: Page, screenshot_dir: Path) -> None:
    page.click(".sidenav >> text=播出日历")
    page.goto(f"/console/calendar?day={YEAR}-10-01")
    expect(page.get_by_test_id("calendar-title")).to_have_text(f"{YEAR} 年 10 月")
    expect(page.locator("#calendar-village optgroup")).not_to_have_count(0)
    with page.expect_response(lambda response: "/console/endpoints/villages" in response.url):
        page.get_by_test_id("calendar-town").select_option(label="石桥镇")
    # The town's own list replaces the whole city's, which holds 青山村 too (grouped by town): a
    # village picked before the swap would be lost with the old list.
    expect(page.locator("#calendar-village optgroup")).to_have_count(0)
    expect(page.locator("[data-testid=filter-village] option", has_text="青山村")).to_have_count(1)
    page.get_by_test_id("filter-village").select_option(label="青山村")
    page.get_by_test_id("calendar-filter").click()
    # The filter is a page load: wait for the village's calendar, not the city's (same entry text).
    expect(page).to_have_url(re.compile(r"village=\d+"))
    october_first = page.locator(f"[data-day='{YEAR}-10-01']")
    expect(october_first.get_by_test_id("cal-entry")).to_have_text(re.compile("秋季森林防火 ×3"))
    october_first.click()
    expect(page.get_by_test_id("day-plays").locator("li")).to_have_count(3)
    expect(page.get_by_test_id("day-why")).to_have_text("查看该村当天的播出单与原因")
    snapshot(page, screenshot_dir / "calendar.png")
    page.get_by_test_id("day-why").click()
    # The "why" page compiles the village's day on the spot: allow for a loaded CI machine.
    expect(page.get_by_test_id("why-title")).to_have_text(f"青山村 · {YEAR} 年 10 月 1 日", timeout=20_000)
    expect(page.get_by_test_id("why-time")).to_have_text(["06:40-06:41", "12:10-12:11", "18:20-18:21"])
    expect(page.get_by_test_id("why-play").first).to_contain_text("秋季森林防火")
    snapshot(page, screenshot_dir / "why.png")


def test_forest_fire_campaign(page: Page, signed_in: SignedIn, screenshot_dir: Path) -> None:
    # Submitting compiles the conflict report and the why view a forecast: allow a busy CI machine.
    page.context.set_default_timeout(20_000)
    page = signed_in(Role.propagandist, "/console/campaigns")
    create_campaign(page, screenshot_dir)
    submit_and_shift_the_season(page)
    detail = page.url

    page = signed_in(Role.admin, detail)
    page.get_by_test_id("action-approve").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("已批准")
    expect(page.get_by_test_id("campaign-approved")).to_contain_text("陈志强")
    check_calendar_and_why(page, screenshot_dir)
    for name in ("campaigns", "calendar", "why"):
        assert (screenshot_dir / f"{name}.png").stat().st_size > 10_000
