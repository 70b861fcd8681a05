"""Xiao Li's forest-fire season (journey 1) in headless Chromium against a real server: upload the
captain's phone recording, write and preview a bulletin for two villages, build a playlist with
the chimes played twice, render it and listen. Real ffmpeg, sox, espeak and render workers."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from broadcast import migrations
from broadcast.alerts.models import AlertStatus
from broadcast.auth.models import Role, User
from broadcast.config import Settings
from broadcast.content.models import Clip
from broadcast.db import make_engine
from tests import builders
from tests.conftest import TEST_SECRET
from tests.console.conftest import ConsoleSite, SignedIn, _free_port, _wait_until_up
from tests.content.builders import alert_playing

pytestmark = pytest.mark.browser
FIRE_TEXT = "{village}的村民朋友们，{date}起进入森林防火期，严禁野外用火。森林火险等级：{fire_risk_level}级。"
RENDER_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("content-site")


@pytest.fixture(scope="module")
def site_engine(data_dir: Path) -> Iterator[Engine]:
    """The site's database, for rows the journey needs from outside the library (an alert)."""
    engine = make_engine(f"sqlite:///{data_dir / 'console.db'}")
    migrations.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def console_site(data_dir: Path, site_engine: Engine) -> Iterator[ConsoleSite]:
    """The shared site's server, but with the audio store in a temp folder and render workers running."""
    from broadcast.app import create_app

    engine = site_engine
    with Session(engine, expire_on_commit=False) as session:
        for town_name, villages in (("城关镇", ("东风村", "新华社区")), ("石桥镇", ("河口村",))):
            town = builders.make_town(session, name=town_name)
            for name in villages:
                builders.make_village(session, town=town, name=name)
        users: dict[Role, User] = {Role.propagandist: builders.make_user(session, role=Role.propagandist)}
        users[Role.propagandist].display_name = "李晓梅"
        session.commit()
    settings = Settings(data_dir=data_dir, audio_store_dir=data_dir / "store", secret_key=TEST_SECRET)
    app = create_app(settings, engine=engine, upgrade_db=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.config.port}"
    _wait_until_up(base_url, server)
    yield ConsoleSite(base_url, {}, users, [], scoped_village="")
    server.should_exit = True
    thread.join(timeout=10)


def phone_recording(folder: Path) -> Path:
    """A 3 s AMR-NB file as a phone saves it (Debian's ffmpeg only decodes AMR; sox encodes it)."""
    wav, amr = folder / "captain.wav", folder / "队长录音.amr"
    source = "sine=frequency=330:duration=3:sample_rate=8000"
    ffmpeg = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-af", "volume=0.3"]
    subprocess.run([*ffmpeg, str(wav)], check=True, timeout=60)
    subprocess.run(["sox", str(wav), "-t", "amr-nb", "-C", "7", str(amr)], check=True, timeout=60)
    return amr


def upload_recording(page: Page, recording: Path) -> None:
    page.get_by_test_id("upload-file").set_input_files(recording)
    page.get_by_test_id("upload-title").fill("消防队长喊话")
    page.get_by_test_id("upload-tags").fill("防火，森林")
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("upload-notice")).to_have_text(
        re.compile("已上传「消防队长喊话」"), timeout=20_000
    )
    # The list refreshes by its own request after the notice: allow for a loaded CI machine.
    expect(page.locator("#results tr[data-clip]")).to_have_count(1, timeout=20_000)
    expect(page.get_by_test_id("clip-duration")).to_have_text("00:03")
    page.get_by_test_id("upload-file").set_input_files(recording)
    page.get_by_test_id("upload-title").fill("再传一次")
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("upload-notice")).to_have_text(re.compile("已存在相同录音"))


def refuse_a_text_file(page: Page, not_audio: Path) -> None:
    not_audio.write_text("不是录音" * 50)
    page.get_by_test_id("upload-file").set_input_files(not_audio)
    page.get_by_test_id("upload-title").fill("假录音")
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("upload-error")).to_have_text(re.compile("无法识别的文件内容"))
    expect(page.get_by_test_id("upload-title")).to_have_value("假录音")


def snapshot(page: Page, path: Path) -> None:
    """The whole page from the top (the top bar is sticky, so scroll back first)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=path, full_page=True)


def write_bulletin(page: Page) -> None:
    page.get_by_test_id("new-bulletin").click()
    page.get_by_test_id("bulletin-title").fill("森林防火期提醒")
    text = page.get_by_test_id("bulletin-text")
    text.fill(FIRE_TEXT.removeprefix("{village}"))
    text.evaluate("el => el.setSelectionRange(0, 0)")
    page.locator(".chip[data-field=village]").click()
    expect(text).to_have_value(FIRE_TEXT)
    expect(page.get_by_test_id("text-counter")).to_have_text(f"{len(FIRE_TEXT)} / 2000 字")
    page.get_by_test_id("bulletin-custom-fields").fill("fire_risk_level")
    expect(page.locator(".chip-custom")).to_have_text("{fire_risk_level}")
    page.get_by_test_id("bulletin-save").click()
    expect(page.get_by_test_id("bulletin-notice")).to_have_text("已保存，可在右侧试听预览")


def choose_place(page: Page, town: str, village: str) -> None:
    with page.expect_response(lambda response: "/console/bulletins/villages" in response.url):
        page.get_by_test_id("place-town").select_option(label=town)
    # The town's own list replaces the whole city's, which holds the village too: a village
    # picked before the swap would be lost with the old list.
    groups = page.locator("[data-testid=place-village] optgroup")
    expect(groups).to_have_count(1)
    expect(groups).to_have_attribute("label", town)
    page.get_by_test_id("place-village").select_option(label=village)


def preview_for(page: Page, town: str, village: str) -> None:
    choose_place(page, town, village)
    page.get_by_test_id("preview-field-fire_risk_level").fill("三")
    page.get_by_test_id("preview-submit").click()
    expect(page.get_by_test_id("preview-text")).to_contain_text(f"{village}的村民朋友们", timeout=20_000)
    expect(page.get_by_test_id("preview-audio")).to_have_attribute(
        "src", re.compile(r"^/api/v1/audio/[0-9a-f]{64}$")
    )


def build_playlist(page: Page) -> None:
    page.get_by_test_id("new-playlist").click()
    page.get_by_test_id("playlist-name").fill("秋季森林防火")
    rows = page.get_by_test_id("item-row")
    steps = (
        ("add-chime", "add-chime-select", "开始提示音（上行四音）"),
        ("add-bulletin", "add-bulletin-select", "森林防火期提醒"),
        ("add-clip", "add-clip-select", "消防队长喊话（00:03）"),
        ("add-chime", "add-chime-select", "结束提示音（下行四音）"),
    )
    for count, (button, select, label) in enumerate(steps, start=1):
        page.get_by_test_id(select).select_option(label=label)
        page.get_by_test_id(button).click()
        expect(rows).to_have_count(count)
    expect(page.get_by_test_id("item-name")).to_have_text(
        ["开始提示音（上行四音）", "森林防火期提醒", "消防队长喊话", "结束提示音（下行四音）"]
    )
    page.get_by_test_id("playlist-repeat").fill("2")
    page.get_by_test_id("playlist-save").click()
    expect(page.get_by_test_id("editor-notice")).to_have_text("已保存为第 1 版")
    expect(page.get_by_test_id("history").locator("li")).to_have_count(1)


def render_program(page: Page) -> None:
    choose_place(page, "石桥镇", "河口村")
    page.get_by_test_id("render-field-fire_risk_level").fill("三")
    page.get_by_test_id("render-submit").click()
    expect(page.get_by_test_id("render-state")).to_have_text("已完成", timeout=RENDER_TIMEOUT_MS)
    expect(page.get_by_test_id("program-audio")).to_have_attribute("src", re.compile(r"^/api/v1/audio/"))
    expect(page.get_by_test_id("manifest-item")).to_have_count(8)
    expect(page.get_by_test_id("manifest-item").first.locator("td").nth(1)).to_have_text("00:00.000")
    expect(page.get_by_test_id("program-duration")).to_have_text(re.compile(r"^\d\d:\d\d\.\d{3}$"))


def refused_deletes(page: Page, engine: Engine) -> None:
    """The recording is in the playlist, then an alert plays it too: each refusal says why."""
    row = page.locator("#results tr[data-clip]")
    delete = row.locator("button", has_text="删除")
    page.once("dialog", lambda dialog: dialog.accept())
    delete.click()
    expect(page.get_by_test_id("row-error")).to_have_text(re.compile("正被节目单 「秋季森林防火」 使用"))
    with Session(engine) as session:
        clip = session.get(Clip, int(row.get_attribute("data-clip") or 0)) or pytest.fail("no clip")
        alert = alert_playing(session, clip, "森林火险橙色预警", AlertStatus.active)
        session.commit()
        named = f"被预警 #{alert.id}「森林火险橙色预警」使用，不能删除"
    page.once("dialog", lambda dialog: dialog.accept())
    delete.click()
    expect(page.get_by_test_id("row-error")).to_have_text(
        re.compile(re.escape(named) + ".*可修改它的标题或标签")
    )
    expect(row).to_have_count(1)


def test_forest_fire_season(
    signed_in: SignedIn, site_engine: Engine, tmp_path: Path, screenshot_dir: Path
) -> None:
    page = signed_in(Role.propagandist, "/console/library")
    expect(page.get_by_test_id("chime")).to_have_count(2)
    upload_recording(page, phone_recording(tmp_path))
    snapshot(page, screenshot_dir / "library.png")
    refuse_a_text_file(page, tmp_path / "notes.amr")

    page.click(".sidenav >> text=文字稿")
    write_bulletin(page)
    preview_for(page, "石桥镇", "河口村")
    preview_for(page, "城关镇", "东风村")
    snapshot(page, screenshot_dir / "bulletins.png")

    page.click(".sidenav >> text=节目单")
    build_playlist(page)
    render_program(page)
    snapshot(page, screenshot_dir / "playlists.png")

    page.click(".sidenav >> text=素材库")
    refused_deletes(page, site_engine)
    for name in ("library", "bulletins", "playlists"):
        assert (screenshot_dir / f"{name}.png").stat().st_size > 10_000
