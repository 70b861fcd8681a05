"""Wang's journey in headless Chromium against a real server: he administers 河口村 only, logs in
and lands on his village; the speaker by the reservoir went offline three days ago at 16:02 and
missed every slot since, and the page says so; he downloads last month's log as XLSX (Chinese
headers) and opens the coverage of each campaign for last month."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import uvicorn
from openpyxl import load_workbook
from playwright.sync_api import Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from broadcast import migrations
from broadcast.auth.models import Role, User
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.console import playlog_pages
from broadcast.console.playlog_pages import WEEKDAYS, last_month
from broadcast.db import make_engine
from broadcast.dispatch.models import PlayEventType, PresenceState
from broadcast.playlog.reconcile import reconcile
from broadcast.regions.models import Endpoint, EndpointStatus, Town
from tests import builders
from tests.conftest import TEST_SECRET
from tests.console.conftest import ConsoleSite, SignedIn, _free_port, _wait_until_up
from tests.console.test_content_browser import snapshot
from tests.playlog.report_builders import SHANGHAI, campaign, event, local, presence, slot

pytestmark = pytest.mark.browser
RESERVOIR = "HK0003"


def _today() -> date:
    return utc_now().astimezone(SHANGHAI).date()


def offline_day() -> date:
    return _today() - timedelta(days=3)


def _seed(session: Session) -> dict[Role, User]:
    town = Town(code="430181002", name="石桥镇")
    session.add(town)
    session.flush()
    village = builders.make_village(session, town=town, name="河口村")
    other = builders.make_village(session, town=town, name="桥头村")
    speakers: list[Endpoint] = []
    for n in range(1, 6):
        endpoint = builders.make_endpoint(session, village=village, code=f"HK{n:04d}")
        endpoint.name = "水库边喇叭" if endpoint.code == RESERVOIR else f"河口村{n}号喇叭"
        speakers.append(endpoint)
    builders.make_endpoint(session, village=other, code="QT0001", status=EndpointStatus.offline)
    first, _ = last_month(_today())
    for endpoint in speakers:
        presence(session, endpoint, PresenceState.online, local(first - timedelta(days=1), "00:00"))
    reservoir = speakers[2]
    gone = offline_day()
    presence(session, reservoir, PresenceState.offline, local(gone, "16:02"))
    reservoir.status = EndpointStatus.offline
    session.add(reservoir)
    fire, water = campaign(session, "森林防火"), campaign(session, "防溺水")
    # last month, for the inspection: the fire campaign on the 15th, one speaker silent
    for endpoint in speakers:
        row = slot(session, endpoint, fire, local(first.replace(day=15), "08:00"))
        if endpoint.code != "HK0005":
            event(session, endpoint, PlayEventType.started, row.starts_at, slot_row=row)
            event(
                session, endpoint, PlayEventType.completed, row.starts_at + timedelta(minutes=3), slot_row=row
            )
    # since it went offline the reservoir speaker misses every slot; the others play
    for day in (gone, gone + timedelta(days=1)):
        for endpoint in speakers:
            row = slot(session, endpoint, water, local(day, "18:00"))
            if endpoint is not reservoir:
                event(
                    session,
                    endpoint,
                    PlayEventType.completed,
                    row.starts_at + timedelta(minutes=5),
                    slot_row=row,
                )
    wang = builders.make_user(session, role=Role.village_admin, username="wang")
    wang.display_name = "王德福"
    builders.scope_user(session, wang, [village])
    return {Role.village_admin: wang}


@pytest.fixture(scope="module")
def console_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSite]:
    """A server over 河口村 (five speakers) and 桥头村, with Wang as 河口村's admin."""
    from broadcast.app import create_app

    data_dir = tmp_path_factory.mktemp("playlog-site")
    engine: Engine = make_engine(f"sqlite:///{data_dir / 'console.db'}")
    migrations.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        users = _seed(session)
        session.commit()
        reconcile(session, now=utc_now(), grace=timedelta(minutes=15), recheck=timedelta(days=60))
        session.commit()
    settings = Settings(data_dir=data_dir, secret_key=TEST_SECRET, render_workers=0)
    app = create_app(settings, engine=engine, upgrade_db=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.config.port}"
    _wait_until_up(base_url, server)
    yield ConsoleSite(base_url, {Role.village_admin: "wang"}, users, [], scoped_village="河口村")
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def test_wang_sees_the_dead_reservoir_speaker_exports_last_month_and_opens_the_coverage(
    page: Page, console_site: ConsoleSite, screenshot_dir: Path, tmp_path: Path
) -> None:
    page.context.set_default_timeout(20_000)
    page.goto("/console/login")
    page.fill("input[name=username]", "wang")
    page.fill("input[name=password]", builders.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/playlog")
    expect(page.locator(".sidenav a.active")).to_have_text("播放记录")
    expect(page.get_by_test_id("village-name")).to_have_text("石桥镇 河口村")
    expect(page.get_by_test_id("playlog-village").locator("option")).to_have_text(["河口村"])
    gone = offline_day()
    since = f"{WEEKDAYS[gone.weekday()]} 16:02"
    dead = page.get_by_test_id("dead-speaker")
    expect(dead).to_have_count(1)
    expect(dead).to_contain_text("水库边喇叭")
    expect(dead.get_by_test_id("dead-text")).to_have_text(f"离线自 {since}")

    # the day it went offline: the evening slot missed, the others played
    page.get_by_test_id("playlog-day").fill(gone.isoformat())
    page.get_by_test_id("playlog-submit").click()
    missed = page.locator(f"[data-testid=slot-row][data-endpoint={RESERVOIR}]")
    expect(missed.get_by_test_id("slot-outcome")).to_have_text(f"未播（离线，自 {since} 起）")
    expect(page.get_by_test_id("plan-counts")).to_have_text("已播 4 · 部分 0 · 失败 0 · 未播 1 · 待核对 0")
    snapshot(page, screenshot_dir / "playlog.png")

    with page.expect_download() as download_info:
        page.get_by_test_id("export-log-xlsx").click()
    download = download_info.value
    first, last = last_month(_today())
    assert download.suggested_filename == f"播放记录_{first.isoformat()}_{last.isoformat()}.xlsx"
    saved = tmp_path / "log.xlsx"
    download.save_as(saved)
    rows = list(load_workbook(saved).worksheets[0].iter_rows(values_only=True))
    assert rows[0][:4] == ("播放时间", "事件", "乡镇（街道）", "村（社区）")
    # started and completed on four speakers on the 15th, and the plays since the reservoir went
    # offline when those days fall in last month too
    since_in_month = sum(first <= day <= last for day in (gone, gone + timedelta(days=1)))
    assert len(rows) == 1 + 8 + 4 * since_in_month
    assert {row[3] for row in rows[1:]} == {"河口村"}

    page.get_by_test_id("open-reports").click()
    expect(page.locator(".sidenav a.active")).to_have_text("统计报表")
    expect(page.get_by_test_id("tab-coverage")).to_have_class("active")
    expect(page.get_by_test_id("report-title")).to_have_text(
        f"播出覆盖 · {first.isoformat()} 至 {last.isoformat()}"
    )
    campaign_row = page.get_by_test_id("coverage-campaign").filter(has_text="森林防火")
    expect(campaign_row.locator("td")).to_have_text(["森林防火", "5", "4", "0", "0", "1", "0", "80.0%"])
    snapshot(page, screenshot_dir / "reports.png")
    for name in ("playlog", "reports"):
        assert (screenshot_dir / f"{name}.png").stat().st_size > 10_000


def test_more_appends_the_next_page_of_the_raw_log(
    signed_in: SignedIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(playlog_pages, "EVENTS_PAGE", 3)  # the server runs in this process
    page = signed_in(Role.village_admin, f"/console/playlog?day={offline_day().isoformat()}")
    rows = page.get_by_test_id("event-row")
    expect(rows).to_have_count(3)
    page.get_by_test_id("events-more").click()
    expect(rows).to_have_count(4)
    expect(page.get_by_test_id("events-more")).to_have_count(0)
    expect(rows.last).to_contain_text("HK0005")
