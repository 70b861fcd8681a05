"""The duty officer's alert desk in headless Chromium against a real server: compose a live level-III
alert for one town, read the reach on the confirmation, send it, watch the board move as devices
acknowledge and play, then cancel with the all-clear; a level-I drill that waits for a second
duty officer, who logs in and approves it, in the drill's own colour; and a drill that plays the
county leader's recording, found by searching the library's clips, framed by the drill words."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from broadcast import migrations
from broadcast.alerts import delivery
from broadcast.alerts.models import Alert, AlertDelivery
from broadcast.alerts.program import DRILL_CLOSING, DRILL_OPENING
from broadcast.auth.audit import SYSTEM
from broadcast.auth.models import Role, User
from broadcast.config import Settings
from broadcast.content import service as content
from broadcast.content.schemas import ClipCreate
from broadcast.content.store import get_store
from broadcast.db import make_engine
from broadcast.dispatch.models import PlayEventType
from broadcast.regions.models import EndpointStatus, Town
from tests import builders
from tests.conftest import TEST_SECRET
from tests.console.conftest import ConsoleSite, SignedIn, _free_port, _wait_until_up
from tests.console.test_content_browser import snapshot
from tests.console.test_content_pages import tone

pytestmark = pytest.mark.browser
TOWN, OTHER_TOWN = "430181002", "430181003"
# town code, town, village, code prefix, endpoints, how many of them are offline
VILLAGES = (
    (TOWN, "石桥镇", "河口村", "HK", 5, 2),
    (OTHER_TOWN, "城关镇", "东风村", "DF", 6, 0),
    (OTHER_TOWN, "城关镇", "新华社区", "XH", 4, 0),
)
SECOND_OFFICER = "zhiban2"
# title, tags, seconds, tone frequency: recordings in the library
CLIPS = (("县长讲话录音", ["防汛"], 4, 523), ("森林防火宣传录音", ["森林防火"], 3, 659))
# The player's duration once Chromium has loaded the recording's metadata (-1 if it cannot).
LOADED_SECONDS = """player => new Promise(done => {
  player.onloadedmetadata = () => done(player.duration);
  player.onerror = () => done(-1);
  player.preload = "metadata";
  player.load();
})"""
DRILL_VIOLET, LIVE_RED = "rgb(107, 63, 160)", "rgb(180, 35, 42)"


def _seed_clips(session: Session, settings: Settings, folder: Path) -> None:
    for title, tags, seconds, frequency in CLIPS:
        content.create_clip(
            session,
            source=tone(folder / f"{frequency}.wav", seconds=seconds, frequency=frequency),
            original_name=f"{frequency}.amr",
            data=ClipCreate(title=title, tags=tags),
            uploader_id=None,
            actor=SYSTEM,
            settings=settings,
            store=get_store(settings),
        )


def _seed(session: Session) -> dict[Role, User]:
    towns: dict[str, Town] = {}
    for town_code, town_name, village_name, prefix, count, offline in VILLAGES:
        if town_code not in towns:
            towns[town_code] = Town(code=town_code, name=town_name)
            session.add(towns[town_code])
            session.flush()
        village = builders.make_village(session, town=towns[town_code], name=village_name)
        for n in range(1, count + 1):
            status = EndpointStatus.offline if n <= offline else EndpointStatus.online
            builders.make_endpoint(session, village=village, code=f"{prefix}{n:04d}", status=status)
    users = {
        Role.duty_officer: builders.make_user(session, role=Role.duty_officer, username="zhiban"),
        Role.admin: builders.make_user(session, role=Role.admin, username="admin"),
    }
    second = builders.make_user(session, role=Role.duty_officer, username=SECOND_OFFICER)
    users[Role.duty_officer].display_name, second.display_name = "王建国", "刘洋"
    return users


@pytest.fixture(scope="module")
def site_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('alert-db') / 'console.db'}")
    migrations.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def console_site(tmp_path_factory: pytest.TempPathFactory, site_engine: Engine) -> Iterator[ConsoleSite]:
    """A server over three villages in two towns, two duty officers, an admin and two recordings."""
    from broadcast.app import create_app

    data_dir = tmp_path_factory.mktemp("alert-site")
    settings = Settings(data_dir=data_dir, secret_key=TEST_SECRET, render_workers=0)
    with Session(site_engine, expire_on_commit=False) as session:
        users = _seed(session)
        _seed_clips(session, settings, data_dir)
        session.commit()
    app = create_app(settings, engine=site_engine, upgrade_db=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.config.port}"
    _wait_until_up(base_url, server)
    usernames = {Role.duty_officer: "zhiban", Role.admin: "admin"}
    yield ConsoleSite(base_url, usernames, users, [], scoped_village="")
    server.should_exit = True
    thread.join(timeout=10)


def fill_alert(page: Page, *, title: str, text: str, level: int, live: bool) -> None:
    expect(page.get_by_test_id("mode-live")).not_to_be_checked()
    expect(page.get_by_test_id("mode-drill")).not_to_be_checked()
    page.get_by_test_id("alert-title").fill(title)
    page.get_by_test_id("alert-text").fill(text)
    expect(page.get_by_test_id("alert-counter")).to_have_text(f"{len(text)} / 1000 字")
    page.locator(f"label:has([data-testid=level-{level}])").click()
    page.get_by_test_id("alert-category").select_option(label="山洪/洪涝")
    page.locator(f"label:has([data-testid={'mode-live' if live else 'mode-drill'}])").click()


def device_reports(engine: Engine, alert_id: int) -> None:
    """What the gateway records for the online speakers: each acknowledges, two play to the end."""
    with Session(engine) as session:
        alert = session.get_one(Alert, alert_id)
        rows = session.exec(
            select(AlertDelivery)
            .where(AlertDelivery.alert_id == alert_id, col(AlertDelivery.online_at_send))
            .order_by(col(AlertDelivery.endpoint_id))
        ).all()
        now = alert.sent_at
        assert now is not None
        delivery.record_acks(
            session, {(alert_id, alert.revision, row.endpoint_id): now + timedelta(seconds=1) for row in rows}
        )
        for row in rows[:2]:
            events = [
                (alert_id, alert.revision, PlayEventType.started, now + timedelta(seconds=2), None),
                (alert_id, alert.revision, PlayEventType.completed, now + timedelta(seconds=30), None),
            ]
            delivery.record_play(session, endpoint_id=row.endpoint_id, events=events)
        session.commit()


def test_a_live_level_three_alert_from_the_form_to_the_board_and_the_all_clear(
    page: Page, signed_in: SignedIn, site_engine: Engine, screenshot_dir: Path
) -> None:
    # Drafting speaks and renders two programs: allow a busy machine.
    page.context.set_default_timeout(60_000)
    page = signed_in(Role.duty_officer, "/console/")
    page.click(".sidenav >> text=预警中心")
    expect(page.locator(".sidenav a.active")).to_have_text("预警中心")
    text = "河道水位快速上涨，石桥镇沿河群众请立即向高处转移。"
    fill_alert(page, title="山洪黄色预警", text=text, level=3, live=True)
    page.get_by_test_id(f"town-{TOWN}").check()
    expect(page.get_by_test_id("target-count")).to_have_text("将覆盖 5 个终端")
    page.get_by_test_id("alert-all-clear").fill("山洪黄色预警解除，请大家恢复正常生产生活。")
    snapshot(page, screenshot_dir / "alerts.png")
    page.get_by_test_id("alert-compose").click()

    expect(page.get_by_test_id("confirm-reach")).to_have_text("将到达 5 个终端（在线 3）")
    expect(page.get_by_test_id("confirm-town")).to_have_text(["石桥镇5"])
    expect(page.get_by_test_id("confirm-village")).to_have_text(["河口村5"])
    expect(page.get_by_test_id("alert-spoken")).to_have_text(text)
    expect(page.get_by_test_id("mode-banner")).to_contain_text("真实预警")
    expect(page.get_by_test_id("alert-audio")).to_have_attribute(
        "src", re.compile(r"^/api/v1/audio/[0-9a-f]{64}$")
    )
    page.get_by_test_id("alert-confirm").click()

    expect(page.get_by_test_id("alert-notice")).to_have_text("已发送，终端正在接收")
    expect(page.get_by_test_id("alert-status")).to_have_text("播发中")
    expect(page.get_by_test_id("board-total")).to_have_text("5")
    expect(page.get_by_test_id("board-offline")).to_have_text("2")
    expect(page.get_by_test_id("board-reached")).to_have_text("0")
    alert_id = int(page.url.split("/")[-1].split("?")[0])
    device_reports(site_engine, alert_id)
    # Nobody reloads: the board polls itself.
    expect(page.get_by_test_id("board-reached")).to_have_text("3")
    expect(page.get_by_test_id("board-completed")).to_have_text("2")
    latency = page.get_by_test_id("board-latency")
    expect(latency).to_have_text("送达用时：首个 1.0 秒 · 中位 1.0 秒 · 最后 1.0 秒")
    expect(page.get_by_test_id("unreached-title")).to_have_text("未送达的终端 · 2 个")
    expect(page.get_by_test_id("unreached-row")).to_have_count(2)
    snapshot(page, screenshot_dir / "alert-board.png")

    expect(page.get_by_test_id("all-clear-text")).to_have_text("山洪黄色预警解除，请大家恢复正常生产生活。")
    page.get_by_test_id("alert-cancel").click()
    expect(page.get_by_test_id("alert-status")).to_have_text("已解除")
    expect(page.get_by_test_id("alert-cancelled")).to_contain_text("险情已解除")
    expect(page.get_by_test_id("board-refresh")).to_have_text("已停止刷新")
    page.click(".sidenav >> text=预警中心")
    row = page.locator(f"tr[data-alert='{alert_id}']")
    expect(row.get_by_test_id("alert-status")).to_have_text("已解除")
    expect(row.get_by_test_id("live-badge")).to_have_text("真实")
    for name in ("alerts", "alert-board"):
        assert (screenshot_dir / f"{name}.png").stat().st_size > 10_000


def test_a_level_one_drill_waits_for_a_second_duty_officer(
    page: Page, signed_in: SignedIn, console_site: ConsoleSite
) -> None:
    page.context.set_default_timeout(60_000)
    page = signed_in(Role.duty_officer, "/console/alerts")
    # Without the drill/live choice the form comes back with the reason and what was typed.
    page.get_by_test_id("alert-title").fill("防汛演练")
    page.get_by_test_id("alert-text").fill("上游水库泄洪，沿河群众请转移。")
    page.locator("label:has([data-testid=level-1])").click()
    page.get_by_test_id("alert-category").select_option(label="山洪/洪涝")
    page.get_by_test_id("target-all").check()
    page.get_by_test_id("alert-compose").click()
    expect(page.get_by_test_id("alert-error")).to_contain_text("演练/真实预警：必须填写")
    expect(page.get_by_test_id("alert-title")).to_have_value("防汛演练")
    page.locator("label:has([data-testid=mode-drill])").click()
    expect(page.locator("label.mode-drill span")).to_have_css("background-color", DRILL_VIOLET)
    page.get_by_test_id("alert-compose").click()

    banner = page.get_by_test_id("mode-banner")
    expect(banner).to_contain_text("演练")
    expect(banner).to_have_css("background-color", DRILL_VIOLET)
    expect(page.get_by_test_id("drill-badge").first).to_have_text("演练")
    expect(page.get_by_test_id("alert-spoken")).to_contain_text("现在进行应急演练")
    expect(page.get_by_test_id("needs-approval")).to_contain_text("需第二人审批")
    expect(page.get_by_test_id("confirm-reach")).to_have_text("将到达 15 个终端（在线 13）")
    expect(page.get_by_test_id("alert-confirm")).to_have_css("background-color", DRILL_VIOLET)
    page.get_by_test_id("alert-confirm").click()
    expect(page.get_by_test_id("alert-status")).to_have_text("待审批")
    expect(page.get_by_test_id("alert-approve")).to_have_count(0)
    expect(page.get_by_test_id("approval-hint")).to_be_visible()
    detail = page.url.split("?")[0]

    page.context.clear_cookies()
    page.goto("/console/login")
    page.fill("input[name=username]", SECOND_OFFICER)
    page.fill("input[name=password]", builders.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
    page.goto(detail)
    expect(page.get_by_test_id("display-name")).to_have_text("刘洋")
    page.get_by_test_id("alert-approve").click()
    expect(page.get_by_test_id("alert-notice")).to_have_text("已审批，预警已发出")
    expect(page.get_by_test_id("alert-status")).to_have_text("播发中")
    expect(page.get_by_test_id("alert-approved")).to_contain_text(SECOND_OFFICER)
    expect(page.get_by_test_id("board-total")).to_have_text("15")
    page.click(".sidenav >> text=预警中心")
    row = page.locator("tr.row-drill").first
    expect(row.get_by_test_id("drill-badge")).to_have_text("演练")
    expect(row.get_by_test_id("drill-badge")).not_to_have_css("color", LIVE_RED)
    expect(row.get_by_test_id("alert-level")).to_have_text("I级（红色）")


def test_a_drill_playing_the_county_leaders_recording_from_the_library_to_the_board(
    page: Page, signed_in: SignedIn, site_engine: Engine
) -> None:
    page.context.set_default_timeout(60_000)
    page = signed_in(Role.duty_officer, "/console/alerts")
    leader, _, _, _ = CLIPS[0]
    page.get_by_test_id("alert-title").fill("县长防汛动员讲话")
    page.locator("label:has([data-testid=level-4])").click()
    page.get_by_test_id("alert-category").select_option(label="山洪/洪涝")
    page.locator("label:has([data-testid=mode-drill])").click()
    expect(page.get_by_test_id("clip-choice")).to_be_hidden()
    page.locator("label:has([data-testid=message-clip])").click()
    expect(page.get_by_test_id("alert-text")).to_be_hidden()
    expect(page.get_by_test_id("clip-drill-note")).to_contain_text(DRILL_OPENING)
    expect(page.locator("[data-testid=clip-option]:visible")).to_have_count(2)
    search = page.get_by_test_id("clip-search")
    search.fill("县长")
    search.press("Enter")  # searches; it does not submit the draft
    shown = page.locator("[data-testid=clip-option]:visible")
    expect(shown).to_have_count(1)
    expect(shown.get_by_test_id("clip-title")).to_have_text(leader)
    expect(shown.get_by_test_id("clip-duration")).to_have_text("00:04")
    search.fill("没有这段")
    expect(page.get_by_test_id("clip-none")).to_be_visible()
    search.fill("防汛")
    shown.click()
    expect(page.get_by_test_id("clip-chosen")).to_have_text(f"{leader}（00:04）")
    recording = page.get_by_test_id("clip-preview").get_attribute("src") or ""
    assert re.fullmatch(r"/api/v1/audio/[0-9a-f]{64}", recording)
    page.get_by_test_id(f"town-{OTHER_TOWN}").check()
    expect(page.get_by_test_id("target-count")).to_have_text("将覆盖 10 个终端")
    page.get_by_test_id("alert-compose").click()

    expect(page.get_by_test_id("mode-banner")).to_contain_text("演练")
    spoken = f"{DRILL_OPENING}【录音：{leader}（00:04）】{DRILL_CLOSING}"
    expect(page.get_by_test_id("alert-spoken")).to_have_text(spoken)
    expect(page.get_by_test_id("alert-clip-title")).to_have_text(leader)
    expect(page.get_by_test_id("alert-clip-duration")).to_have_text("00:04")
    player = page.get_by_test_id("alert-clip-audio")
    expect(player).to_have_attribute("src", recording)
    assert player.evaluate(LOADED_SECONDS) == pytest.approx(4, abs=0.2)
    expect(page.get_by_test_id("confirm-reach")).to_have_text("将到达 10 个终端（在线 10）")
    page.get_by_test_id("alert-confirm").click()

    expect(page.get_by_test_id("alert-notice")).to_have_text("已发送，终端正在接收")
    expect(page.get_by_test_id("board-total")).to_have_text("10")
    alert_id = int(page.url.split("/")[-1].split("?")[0])
    device_reports(site_engine, alert_id)
    expect(page.get_by_test_id("board-reached")).to_have_text("10")
    expect(page.get_by_test_id("board-completed")).to_have_text("2")
    expect(page.get_by_test_id("update-clip-note")).to_contain_text(leader)
    page.click(".sidenav >> text=预警中心")
    row = page.locator(f"tr[data-alert='{alert_id}']")
    expect(row.get_by_test_id("clip-mark")).to_have_text("录音")
    expect(row.get_by_test_id("drill-badge")).to_have_text("演练")
