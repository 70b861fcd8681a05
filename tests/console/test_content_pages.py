"""The content pages without a browser: 素材库, 文字稿 and 节目单, their forms, the errors shown
beside them, and who may open them. Real ffmpeg, the real offline TTS engine, a real render."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from broadcast.alerts.models import AlertStatus
from broadcast.auth.models import Role, User
from broadcast.config import Settings
from broadcast.console.library import FORM_ERROR_HEADER
from broadcast.console.playlists import Row, apply_op
from broadcast.content.models import Bulletin, Chime, ChimeKind, Clip
from broadcast.playlists.jobs import run_pending
from broadcast.playlists.models import Playlist, PlaylistRevision
from broadcast.regions.models import Village
from tests.conftest import TEST_SECRET
from tests.content.builders import alert_playing, stored_clip

SignIn = Callable[[User], TestClient]
HTMX = {"HX-Request": "true"}
FIRE_TEXT = "{village}的村民朋友们，{date}起进入森林防火期，严禁野外用火。森林火险等级：{fire_risk_level}级。"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The shared settings with the audio store in the test's own folder."""
    return Settings(
        data_dir=tmp_path / "data",
        audio_store_dir=tmp_path / "store",
        secret_key=TEST_SECRET,
        render_workers=0,
    )


@pytest.fixture
def staff(sign_in: SignIn, users: dict[Role, User]) -> TestClient:
    return sign_in(users[Role.propagandist])


def tone(path: Path, *, seconds: float = 3, frequency: int = 440) -> Path:
    source = f"sine=frequency={frequency}:duration={seconds}:sample_rate=16000"
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-af", "volume=0.3"]
    subprocess.run([*argv, str(path)], check=True, timeout=60)
    return path


def upload(
    client: TestClient, path: Path, *, title: str, tags: str = "", htmx: bool = True
) -> httpx.Response:
    with path.open("rb") as handle:
        return client.post(
            "/console/library/clips",
            files={"file": (path.name, handle, "application/octet-stream")},
            data={"title": title, "tags": tags},
            headers=HTMX if htmx else {},
        )


def clips_in(engine: Engine) -> list[Clip]:
    with Session(engine) as session:
        return list(session.exec(select(Clip).order_by(col(Clip.id))).all())


def village(engine: Engine) -> Village:
    with Session(engine) as session:
        return session.exec(select(Village).order_by(col(Village.id))).first() or pytest.fail("no village")


def editor_form(items: list[tuple[str, Any]], **extra: Any) -> dict[str, Any]:
    """The editor's fields for these (kind, ref or silence seconds) rows."""
    return {
        "item_kind": [kind for kind, _ in items],
        "item_ref": ["" if kind == "silence" else str(ref) for kind, ref in items],
        "item_silence_s": [str(ref) if kind == "silence" else "" for kind, ref in items],
        "item_repeat": ["1" for _ in items],
        **extra,
    }


def assert_form_error(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers[FORM_ERROR_HEADER] == "1"
    assert "application/json" not in response.headers["content-type"]
    for fragment in fragments:
        assert fragment in response.text


@pytest.mark.parametrize("path", ["/console/library", "/console/bulletins", "/console/playlists/new"])
@pytest.mark.parametrize("role", [Role.village_admin, Role.duty_officer])
def test_other_roles_get_the_403_page(
    sign_in: SignIn, users: dict[Role, User], role: Role, path: str
) -> None:
    response = sign_in(users[role]).get(path)
    assert response.status_code == 403
    assert "您的角色无权查看「" in response.text
    assert 'href="/console/library"' not in response.text


def test_other_roles_cannot_upload(sign_in: SignIn, users: dict[Role, User], tmp_path: Path) -> None:
    response = upload(sign_in(users[Role.duty_officer]), tone(tmp_path / "a.wav"), title="x", htmx=False)
    assert response.status_code == 403
    assert "无权查看「素材库」" in response.text


@pytest.mark.parametrize("role", [Role.propagandist, Role.admin])
def test_content_sections_in_the_navigation(sign_in: SignIn, users: dict[Role, User], role: Role) -> None:
    response = sign_in(users[role]).get("/console/bulletins")
    assert response.status_code == 200
    nav = re.findall(r'data-section="(\w+)"', response.text)
    assert nav == ["alerts"] * (role == Role.admin) + [
        "dashboard",
        "endpoints",
        "library",
        "bulletins",
        "playlists",
        "campaigns",
        "calendar",
        "rundowns",
        "playlog",
        "reports",
    ]


def test_upload_lists_the_clip_and_the_same_recording_is_not_stored_twice(
    staff: TestClient, engine: Engine, users: dict[Role, User], tmp_path: Path
) -> None:
    recording = tone(tmp_path / "队长喊话.wav")
    first = upload(staff, recording, title="消防队长喊话", tags="防火，森林")
    assert first.status_code == 200
    assert first.headers["HX-Trigger"] == "clips-changed"
    assert "已上传「消防队长喊话」，时长 00:03" in first.text
    again = upload(staff, recording, title="另一个标题")
    assert again.status_code == 200
    assert f"已存在相同录音：素材 #{clips_in(engine)[0].id}「消防队长喊话」" in again.text
    assert len(clips_in(engine)) == 1

    page = staff.get("/console/library")
    assert page.status_code == 200
    for shown in (
        "消防队长喊话",
        "00:03",
        "队长喊话.wav",
        users[Role.propagandist].display_name,
        "防火",
        "森林",
    ):
        assert shown in page.text
    assert f'src="/api/v1/audio/{clips_in(engine)[0].blob_sha256}"' in page.text
    assert page.text.count('data-testid="chime"') == 2
    assert staff.get(f"/api/v1/audio/{clips_in(engine)[0].blob_sha256}").status_code == 200


def test_upload_errors_are_shown_beside_the_form_and_store_nothing(
    staff: TestClient, engine: Engine, tmp_path: Path
) -> None:
    text = tmp_path / "notes.mp3"
    text.write_text("这不是录音" * 100)
    assert_form_error(upload(staff, text, title="假录音"), 415, "无法识别的文件内容", 'value="假录音"')
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert_form_error(upload(staff, empty, title="空文件"), 422, "0 字节")
    no_title = upload(staff, tone(tmp_path / "a.wav"), title="")
    assert_form_error(no_title, 422, "标题或标签不合要求")
    full_page = upload(staff, text, title="假录音", htmx=False)
    assert full_page.status_code == 415
    assert "<nav" in full_page.text
    assert "无法识别的文件内容" in full_page.text
    assert clips_in(engine) == []


def test_search_and_tag_filter(staff: TestClient, tmp_path: Path) -> None:
    upload(staff, tone(tmp_path / "a.wav", frequency=300), title="防火喊话", tags="防火")
    upload(staff, tone(tmp_path / "b.wav", frequency=500), title="防溺水提醒", tags="防溺水")
    by_tag = staff.get("/console/library?tag=防火", headers=HTMX)
    assert "共 1 条录音" in by_tag.text
    assert "防火喊话" in by_tag.text
    assert "防溺水提醒" not in by_tag.text
    assert by_tag.headers["HX-Push-Url"] == "/console/library?tag=%E9%98%B2%E7%81%AB"
    by_text = staff.get("/console/library?q=溺水")
    assert "防溺水提醒" in by_text.text
    assert "防火喊话" not in by_text.text
    assert "共 0 条录音" in staff.get("/console/library?q=没有这个").text


def test_edit_title_and_tags(staff: TestClient, engine: Engine, tmp_path: Path) -> None:
    upload(staff, tone(tmp_path / "a.wav"), title="旧标题")
    clip_id = clips_in(engine)[0].id
    form = staff.get(f"/console/library/clips/{clip_id}/edit", headers=HTMX)
    assert 'name="title" value="旧标题"' in form.text
    refused = staff.post(f"/console/library/clips/{clip_id}", data={"title": "  ", "tags": ""}, headers=HTMX)
    assert_form_error(refused, 422, "标题：不能为空", 'data-testid="edit-title"')
    saved = staff.post(
        f"/console/library/clips/{clip_id}", data={"title": "新标题", "tags": "防火、山林"}, headers=HTMX
    )
    assert saved.status_code == 200
    assert "新标题" in saved.text
    assert "edit-title" not in saved.text
    assert clips_in(engine)[0].tags == ["防火", "山林"]
    gone = staff.get("/console/library/clips/999/edit", headers=HTMX)
    assert_form_error(gone, 404, "录音素材 #999 不存在")


def test_delete_refused_while_a_playlist_uses_the_clip(
    staff: TestClient, engine: Engine, tmp_path: Path
) -> None:
    upload(staff, tone(tmp_path / "a.wav"), title="在用录音")
    upload(staff, tone(tmp_path / "b.wav", frequency=600), title="闲置录音")
    used, idle = (clip.id for clip in clips_in(engine))
    body = editor_form([("clip", used)], name="秋季防火", description="", repeat="1")
    assert staff.post("/console/playlists", data=body, follow_redirects=False).status_code == 303
    refused = staff.post(f"/console/library/clips/{used}/delete", headers=HTMX)
    assert_form_error(refused, 409, "正被节目单 「秋季防火」 使用", "在用录音")
    deleted = staff.post(f"/console/library/clips/{idle}/delete", headers=HTMX)
    assert (deleted.status_code, deleted.text, deleted.headers["HX-Trigger"]) == (200, "", "clips-changed")
    assert [clip.title for clip in clips_in(engine)] == ["在用录音"]


def test_delete_refused_while_an_alert_plays_the_clip(staff: TestClient, engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        clip = stored_clip(session, "县长防汛动员")
        alert = alert_playing(session, clip, "山洪预警", AlertStatus.active)
        session.commit()
    refused = staff.post(f"/console/library/clips/{clip.id}/delete", headers=HTMX)
    assert_form_error(
        refused,
        409,
        'data-testid="row-error"',
        f"录音素材「县长防汛动员」被预警 #{alert.id}「山洪预警」使用，不能删除",
        "可修改它的标题或标签",
        f'data-clip="{clip.id}"',
    )
    assert [clip.title for clip in clips_in(engine)] == ["县长防汛动员"]


def _bulletin_form(**changes: str) -> dict[str, str]:
    return {
        "title": "森林防火",
        "text": FIRE_TEXT,
        "custom_fields": "fire_risk_level",
        "rate": "100",
    } | changes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"text": "{village}请注意{weather}"}, "未知字段：{weather}"),
        ({"text": "防火" * 1001}, "文字稿过长：2002 个字符"),
        ({"text": "。，！？……", "custom_fields": ""}, "没有可朗读的文字"),
        ({"title": " "}, "标题"),
        ({"rate": "fast"}, "语速：须为数字"),
        ({"rate": "300"}, "语速：不能大于 200"),
        ({"engine": "nuance"}, "未知的语音合成引擎：nuance"),
    ],
)
def test_bulletin_errors_are_shown_on_the_form(
    staff: TestClient, engine: Engine, changes: dict[str, str], message: str
) -> None:
    response = staff.post("/console/bulletins", data=_bulletin_form(**changes), follow_redirects=False)
    assert response.status_code == 422
    assert message in response.text
    assert 'data-testid="bulletin-text"' in response.text
    with Session(engine) as session:
        assert session.exec(select(Bulletin)).first() is None


def test_write_a_bulletin_then_edit_it(staff: TestClient, engine: Engine) -> None:
    created = staff.post("/console/bulletins", data=_bulletin_form(), follow_redirects=False)
    assert created.status_code == 303
    page = staff.get(created.headers["location"])
    assert "已保存，可在右侧试听预览" in page.text
    assert "每个村一次" in page.text
    assert page.text.count('class="chip"') == 4
    assert 'data-field="fire_risk_level"' in page.text
    assert 'data-testid="preview-field-fire_risk_level"' in page.text
    assert '<option value="espeak"' in page.text
    bulletin_id = created.headers["location"].split("/")[-1].split("?")[0]
    edited = staff.post(
        f"/console/bulletins/{bulletin_id}",
        data=_bulletin_form(text="全体村民请注意防火。", custom_fields="", rate="120"),
        follow_redirects=False,
    )
    assert edited.status_code == 303
    listing = staff.get("/console/bulletins")
    assert "全体村民请注意防火。" in listing.text
    assert "全市一次" in listing.text
    assert "120%" in listing.text


def test_preview_for_a_village(staff: TestClient, engine: Engine) -> None:
    location = staff.post("/console/bulletins", data=_bulletin_form(), follow_redirects=False).headers[
        "location"
    ]
    url = location.split("?")[0] + "/preview"
    place = village(engine)
    form = {"village": place.code, "date": "2026-10-01", "field_name": "fire_risk_level", "field_value": "三"}
    preview = staff.post(url, data=form, headers=HTMX)
    assert preview.status_code == 200, preview.text
    assert f"{place.name}的村民朋友们，2026年10月1日起进入森林防火期" in preview.text
    assert "二零二六年十月一日" in preview.text
    sha = re.search(r'src="/api/v1/audio/([0-9a-f]{64})"', preview.text)
    assert sha is not None
    assert staff.get(f"/api/v1/audio/{sha.group(1)}").headers["content-type"] == "audio/mpeg"

    missing = staff.post(url, data={**form, "field_value": ""}, headers=HTMX)
    assert_form_error(missing, 422, "渲染文字稿需要字段 {fire_risk_level}")
    bad_date = staff.post(url, data={**form, "date": "10/01"}, headers=HTMX)
    assert_form_error(bad_date, 422, "播出日期：日期格式不对")
    unknown = staff.post(url, data={**form, "village": "999999"}, headers=HTMX)
    assert_form_error(unknown, 422, "村（社区）代码 999999 不存在")


def test_delete_a_bulletin_in_use_is_refused(staff: TestClient, engine: Engine) -> None:
    location = staff.post("/console/bulletins", data=_bulletin_form(), follow_redirects=False).headers[
        "location"
    ]
    bulletin_url = location.split("?")[0]
    bulletin_id = int(bulletin_url.rsplit("/", 1)[1])
    body = editor_form([("bulletin", bulletin_id)], name="用到文字稿", repeat="1")
    staff.post("/console/playlists", data=body)
    refused = staff.post(f"{bulletin_url}/delete", follow_redirects=False)
    assert refused.status_code == 409
    assert "正被节目单使用，不能删除：用到文字稿" in refused.text


def test_editor_operations() -> None:
    rows = [Row(kind="chime", ref="1"), Row(kind="bulletin", ref="2"), Row(kind="clip", ref="3")]
    assert [r.ref for r in apply_op(rows, "up:2", {})[0]] == ["1", "3", "2"]
    assert [r.ref for r in apply_op(rows, "down:0", {})[0]] == ["2", "1", "3"]
    assert [r.ref for r in apply_op(rows, "remove:1", {})[0]] == ["1", "3"]
    assert apply_op(rows, "up:0", {}) == (rows, None)
    assert apply_op(rows, "remove:7", {})[1] == "条目已变化，请刷新页面后重试"
    added, problem = apply_op(rows, "add:silence", {"silence": "1.5"})
    assert (added[-1], problem) == (Row(kind="silence", silence_s="1.5"), None)
    assert apply_op(rows, "add:clip", {"clip": ""})[1] == "请先在下拉框中选择要添加的录音"


def test_editor_fragment_keeps_the_rows(staff: TestClient, engine: Engine) -> None:
    staff.get("/console/library")  # the built-in chimes are made on first use
    with Session(engine) as session:
        attention = session.exec(select(Chime).where(Chime.kind == ChimeKind.attention)).one()
    body = editor_form([("silence", "1.5")], op="add:chime", add_chime=str(attention.id))
    added = staff.post("/console/playlists/editor", data=body, headers=HTMX)
    assert added.status_code == 200
    assert added.text.count('data-testid="item-row"') == 2
    assert attention.name in added.text
    assert 'value="1.5"' in added.text
    refused = staff.post("/console/playlists/editor", data={**body, "op": "add:clip"}, headers=HTMX)
    assert_form_error(refused, 422, "请先在下拉框中选择要添加的录音")
    assert refused.text.count('data-testid="item-row"') == 1


PLAYLIST_ERRORS: list[tuple[list[tuple[str, Any]], dict[str, str], str]] = [
    ([], {}, "节目单至少要包含一条有声条目"),
    ([("silence", "2")], {}, "节目单至少要包含一条有声条目"),
    ([("clip", 999)], {}, "以下引用不存在，请先上传或选择已有内容：录音 999"),
    ([("silence", "0.01"), ("clip", 999)], {}, "第 1 条 静音时长（毫秒）：不能小于 100"),
    ([("clip", 999)], {"repeat": "0"}, "重复次数：不能小于 1"),
    ([("clip", 999)], {"name": ""}, "名称：不能为空"),
]


def test_playlist_errors_keep_the_editor(staff: TestClient, engine: Engine) -> None:
    for items, extra, message in PLAYLIST_ERRORS:
        body = editor_form(items, **({"name": "春季防火", "repeat": "1"} | extra))
        response = staff.post("/console/playlists", data=body, follow_redirects=False)
        assert response.status_code == 422, message
        assert message in response.text
        assert response.text.count('data-testid="item-row"') == len(items)
    with Session(engine) as session:
        assert session.exec(select(Playlist)).first() is None


def _make_program(staff: TestClient, engine: Engine, tmp_path: Path) -> tuple[str, dict[str, int]]:
    """The journey's playlist: attention chime, bulletin, clip, closing chime, played twice."""
    staff.get("/console/library")  # the built-in chimes are made on first use
    upload(staff, tone(tmp_path / "captain.wav", seconds=2), title="队长喊话")
    text = "{village}的村民请注意，进山不带火种。"
    bulletin = staff.post("/console/bulletins", data=_bulletin_form(text=text, custom_fields=""))
    assert bulletin.status_code == 200
    with Session(engine) as session:
        ids = {
            "attention": session.exec(select(Chime.id).where(Chime.kind == ChimeKind.attention)).one(),
            "closing": session.exec(select(Chime.id).where(Chime.kind == ChimeKind.closing)).one(),
            "bulletin": session.exec(select(Bulletin.id)).one(),
            "clip": session.exec(select(Clip.id)).one(),
        }
    order = [("chime", ids["attention"]), ("bulletin", ids["bulletin"]), ("clip", ids["clip"])]
    body = editor_form([*order, ("chime", ids["closing"])], name="秋季森林防火", repeat="2")
    created = staff.post("/console/playlists", data=body, follow_redirects=False)
    assert created.status_code == 303
    return created.headers["location"].split("?")[0], ids


def test_revisions_history_and_render(
    staff: TestClient, app: FastAPI, engine: Engine, users: dict[Role, User], tmp_path: Path
) -> None:
    url, ids = _make_program(staff, engine, tmp_path)
    page = staff.get(f"{url}?saved=1")
    assert "已保存为第 1 版" in page.text
    assert users[Role.propagandist].display_name in page.text
    assert page.text.count('data-testid="item-row"') == 4

    revised = staff.post(f"{url}/revisions", data=editor_form([("clip", ids["clip"])], repeat="1"))
    assert "已保存为第 2 版" in revised.text
    old = staff.get(f"{url}/revisions/1")
    assert "只读" in old.text
    assert "整单播放 2 遍" in old.text
    assert "以此版本为基础编辑" in old.text
    assert 'name="item_kind"' not in old.text
    assert staff.get(f"{url}?base=1").text.count('data-testid="item-row"') == 4
    with Session(engine) as session:
        assert len(session.exec(select(PlaylistRevision)).all()) == 2

    form = {"revision": "1", "village": "", "date": "2026-10-01"}
    refused = staff.post(f"{url}/renders", data=form, headers=HTMX)
    assert_form_error(refused, 422, "请指定村（社区）代码")
    place = village(engine)
    queued = staff.post(f"{url}/renders", data={**form, "village": place.code}, headers=HTMX)
    assert queued.status_code == 200
    render_id = re.search(r'hx-get="/console/playlists/renders/(\d+)" hx-trigger="every 1s"', queued.text)
    assert render_id is not None
    assert run_pending(engine, settings=app.state.settings) == 1

    done = staff.get(f"/console/playlists/renders/{render_id.group(1)}", headers=HTMX)
    assert "hx-trigger" not in done.text
    assert 'data-testid="program-audio"' in done.text
    starts = re.findall(r'<td class="mono">(\d\d:\d\d\.\d{3})</td>\s*<td class="mono">', done.text)
    assert len(starts) == 8
    assert starts[0] == "00:00.000"
    assert done.text.count("第 2 遍") == 4
    listing = staff.get("/console/playlists")
    assert "第 2 版" in listing.text
    assert "未生成" in listing.text
