"""预警中心 without a browser: who may open it, the compose form's errors beside the form (nothing
stored), one draft per form, the confirmation and its refusals (stale reach, self-approval, a
short break-glass reason), update, cancel with the all-clear, the board and the history; and an
alert that plays a recorded clip from the library instead of text, framed when it is a drill."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, func, select

from broadcast.alerts.models import Alert, AlertDelivery, AlertStatus, DeliveryState
from broadcast.alerts.program import DRILL_CLOSING, DRILL_OPENING
from broadcast.auth.audit import SYSTEM
from broadcast.auth.models import Role, User
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.console.alert_form import local_text
from broadcast.console.library import FORM_ERROR_HEADER
from broadcast.content import service as content
from broadcast.content.models import Clip
from broadcast.content.schemas import ClipCreate
from broadcast.content.store import get_store
from broadcast.dispatch.models import OutboxMessage
from broadcast.regions.models import Endpoint, EndpointStatus, Village
from tests import builders
from tests.console.test_content_pages import tone
from tests.playlists.conftest import make_clip

SignIn = Callable[[User], TestClient]
HTMX = {"HX-Request": "true"}
SHANGHAI = ZoneInfo("Asia/Shanghai")
CITY = 12  # endpoints in builders.small_city, all online
TEXT = "河道水位快速上涨，沿河群众请立即向高处转移。"
LEADER = "县长讲话录音"
LOST = "音频丢失的录音"


@pytest.fixture
def second_officer(session: Session, users: dict[Role, User]) -> User:
    officer = builders.make_user(session, role=Role.duty_officer)
    session.commit()
    return officer


@pytest.fixture
def leader_clip(session: Session, settings: Settings, tmp_path: Path) -> Clip:
    """A 4 s recording uploaded to the library, its audio in the store."""
    clip, _ = content.create_clip(
        session,
        source=tone(tmp_path / "leader.wav", seconds=4, frequency=523),
        original_name="county-leader.amr",
        data=ClipCreate(title=LEADER, tags=["防汛"]),
        uploader_id=None,
        actor=SYSTEM,
        settings=settings,
        store=get_store(settings),
    )
    session.commit()
    return clip


@pytest.fixture
def lost_clip(session: Session) -> Clip:
    """A clip whose audio file is not in the store (a store restored without it)."""
    clip = make_clip(session, title=LOST)
    session.commit()
    return clip


def compose_form(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_key": uuid.uuid4().hex,
        "title": "山洪黄色预警",
        "text": TEXT,
        "level": "3",
        "category": "flood",
        "drill": "false",
        "all": "true",
        "repeat": "2",
        "valid_until": local_text(utc_now() + timedelta(hours=2), SHANGHAI),
        "all_clear_text": "山洪黄色预警解除，请大家恢复正常生产生活。",
    }
    body.update(overrides)
    return body


def compose(client: TestClient, **overrides: Any) -> int:
    response = client.post("/console/alerts", data=compose_form(**overrides), follow_redirects=False)
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/console/alerts/(\d+)", response.headers["location"])
    assert match is not None
    return int(match.group(1))


def confirm_fields(page: str, action: str = "send") -> dict[str, str]:
    """The hidden reach and drill of the page's confirm (or break-glass) form, as the browser posts."""
    form = re.search(rf'action="/console/alerts/\d+/{action}"[^>]*>(.*?)</form>', page, re.S)
    assert form is not None, f"no {action} form on the page"
    return dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form.group(1)))


def act(client: TestClient, alert_id: int, action: str, **data: Any) -> httpx.Response:
    return client.post(f"/console/alerts/{alert_id}/{action}", data=data, follow_redirects=False)


def send(client: TestClient, alert_id: int) -> httpx.Response:
    page = client.get(f"/console/alerts/{alert_id}").text
    return act(client, alert_id, "send", **confirm_fields(page))


def stored(session: Session, alert_id: int) -> Alert:
    session.expire_all()
    return session.get_one(Alert, alert_id)


def alert_count(session: Session) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(Alert)).one()


def assert_form_error(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers[FORM_ERROR_HEADER] == "1"
    for fragment in fragments:
        assert fragment in response.text


# ---- who may open it ----


def test_the_desk_is_first_in_the_navigation_for_duty_officers_and_admins_only(
    sign_in: SignIn, users: dict[Role, User]
) -> None:
    for role in Role:
        nav = re.findall(r'data-section="(\w+)"', sign_in(users[role]).get("/console/rundowns").text)
        if role in (Role.duty_officer, Role.admin):
            assert nav[0] == "alerts"
        else:
            assert "alerts" not in nav


def test_propagandists_and_village_admins_are_refused_and_the_drafter_may_discard(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    alert_id = compose(sign_in(users[Role.duty_officer]))
    for role in (Role.propagandist, Role.village_admin):
        client = sign_in(users[role])
        for path in ("/console/alerts", f"/console/alerts/{alert_id}", f"/console/alerts/{alert_id}/board"):
            response = client.get(path)
            assert response.status_code == 403
            assert "您的角色无权查看「预警中心」" in response.text
        assert client.post("/console/alerts", data=compose_form()).status_code == 403
        assert act(client, alert_id, "send", reach=CITY, drill="false").status_code == 403
        assert act(client, alert_id, "cancel", reason="x").status_code == 403
    assert stored(session, alert_id).status == AlertStatus.draft
    assert alert_count(session) == 1
    done = act(sign_in(users[Role.duty_officer]), alert_id, "cancel", reason="未发送，作废草稿")
    assert done.headers["location"].endswith("done=discard")
    assert stored(session, alert_id).status == AlertStatus.discarded


def test_signed_out_goes_to_the_login_form(client: TestClient) -> None:
    response = client.get("/console/alerts", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Falerts"


# ---- the compose form ----


def test_the_form_has_a_new_request_key_each_time_and_no_drill_choice_made(
    sign_in: SignIn, users: dict[Role, User]
) -> None:
    client = sign_in(users[Role.duty_officer])
    pages = [client.get("/console/alerts").text for _ in range(2)]
    keys = [re.search(r'name="request_key" value="([0-9a-f]{32})"', page) for page in pages]
    assert keys[0]
    assert keys[1]
    assert keys[0].group(1) != keys[1].group(1)
    page = pages[0]
    assert re.search(r'name="drill" value="(true|false)" checked', page) is None
    assert list(re.findall(r'data-testid="level-(\d)"', page)) == ["1", "2", "3", "4"]
    assert "I级（红色）" in page
    assert "IV级（蓝色）" in page
    assert "森林火灾" in page
    assert "山洪/洪涝" in page
    assert "0 / 1000 字" in page
    assert 'hx-post="/console/campaigns/preview"' in page


def test_a_double_submit_is_one_draft_valid_until_typed_in_shanghai_stored_in_utc(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    client = sign_in(users[Role.duty_officer])
    when = (utc_now() + timedelta(hours=3)).replace(second=0, microsecond=0)
    body = compose_form(valid_until=local_text(when, SHANGHAI))
    first = client.post("/console/alerts", data=body, follow_redirects=False)
    second = client.post("/console/alerts", data=body, follow_redirects=False)
    assert first.headers["location"] == second.headers["location"]
    assert alert_count(session) == 1
    alert_id = int(first.headers["location"].rsplit("/", 1)[1])
    stored_at = stored(session, alert_id).valid_until
    assert (stored_at if stored_at.tzinfo else stored_at.replace(tzinfo=UTC)) == when


def test_a_5000_character_text_is_refused_beside_the_form_and_nothing_is_made(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    client = sign_in(users[Role.duty_officer])
    response = client.post("/console/alerts", data=compose_form(text="水" * 5000, title="超长预警"))
    assert_form_error(response, 422, "播报文本：最多 1000 个字符")
    assert 'value="超长预警"' in response.text
    assert "5000 / 1000 字" in response.text
    assert 'class="counter over"' in response.text
    assert alert_count(session) == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"drill": ""}, "演练/真实预警：必须填写"),
        ({"level": ""}, "预警级别：必须填写"),
        ({"category": ""}, "预警类别：必须填写"),
        ({"title": " "}, "标题：不能为空"),
        ({"valid_until": "明天"}, "有效期至“明天”不是有效的时间"),
        ({"valid_until": ""}, "有效期至：必须填写"),
        ({"all": "false"}, "尚未选择播发范围"),
        ({"message": "video"}, "播报方式只能选“文字播报（语音合成）”或“录音素材”"),
    ],
)
def test_each_missing_choice_is_named_in_chinese(
    sign_in: SignIn, users: dict[Role, User], session: Session, overrides: dict[str, str], message: str
) -> None:
    client = sign_in(users[Role.duty_officer])
    response = client.post("/console/alerts", data=compose_form(**overrides))
    assert response.status_code in (409, 422), response.text
    assert response.headers[FORM_ERROR_HEADER] == "1"
    assert message in response.text
    assert alert_count(session) == 0


def test_a_past_validity_is_refused_by_the_service(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    past = local_text(utc_now() - timedelta(hours=1), SHANGHAI)
    response = sign_in(users[Role.duty_officer]).post("/console/alerts", data=compose_form(valid_until=past))
    assert_form_error(response, 422, "已过或不足 1 分钟")
    assert alert_count(session) == 0


# ---- confirm, approve, break glass ----


def test_a_live_level_three_alert_is_confirmed_with_the_reach_it_shows_and_goes_out(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    client = sign_in(users[Role.duty_officer])
    alert_id = compose(client)
    page = client.get(f"/console/alerts/{alert_id}").text
    assert f"将到达 {CITY} 个终端（在线 {CITY}）" in page
    assert page.count('data-testid="confirm-town"') == 2
    assert page.count('data-testid="confirm-village"') == 4
    assert TEXT in page
    assert re.search(r'<audio controls preload="none" src="/api/v1/audio/[0-9a-f]{64}"', page)
    assert "真实预警 · 将向群众播发" in page
    assert "需第二人审批" not in page
    shown = confirm_fields(page)
    assert shown == {"reach": str(CITY), "drill": "false"}

    # A speaker joins the area between showing and confirming: the confirmation is stale.
    village = session.exec(select(Village)).first()
    assert village is not None
    builders.make_endpoint(session, village=village)
    session.commit()
    stale = act(client, alert_id, "send", **shown)
    assert_form_error(stale, 409, "确认信息已过时", f"将到达 {CITY + 1} 个终端（确认时为 {CITY} 个")
    assert f"将到达 {CITY + 1} 个终端（在线 {CITY + 1}）" in stale.text
    assert stored(session, alert_id).status == AlertStatus.draft
    assert session.exec(select(func.count()).select_from(OutboxMessage)).one() == 0

    response = act(client, alert_id, "send", **confirm_fields(stale.text))
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/alerts/{alert_id}?done=send"
    page = client.get(response.headers["location"]).text
    assert "已发送，终端正在接收" in page
    assert "播发中" in page
    assert 'hx-trigger="every 2s"' in page
    assert re.search(rf'data-testid="board-total">{CITY + 1}<', page)
    assert f"未送达的终端 · {CITY + 1} 个" in page
    rows = session.exec(select(AlertDelivery).where(AlertDelivery.alert_id == alert_id)).all()
    assert len(rows) == CITY + 1


def test_level_one_waits_for_a_second_officer_and_the_drafter_cannot_approve(
    sign_in: SignIn, users: dict[Role, User], session: Session, second_officer: User
) -> None:
    drafter = sign_in(users[Role.duty_officer])
    alert_id = compose(drafter, level="1", title="山洪红色预警")
    page = drafter.get(f"/console/alerts/{alert_id}").text
    assert "需第二人审批" in page
    assert "确认（真实预警，12 个终端）并提交审批" in page
    assert act(drafter, alert_id, "send", **confirm_fields(page)).headers["location"].endswith("done=confirm")
    page = drafter.get(f"/console/alerts/{alert_id}").text
    assert "待审批" in page
    assert 'data-testid="alert-approve"' not in page
    assert "请另一位值班员或管理员登录后审批" in page
    own = act(drafter, alert_id, "approve")
    assert own.status_code == 403
    assert "不能审批自己起草或确认的预警" in own.text
    assert stored(session, alert_id).status == AlertStatus.awaiting_approval

    approver = sign_in(second_officer)
    page = approver.get(f"/console/alerts/{alert_id}").text
    assert 'data-testid="alert-approve"' in page
    response = act(approver, alert_id, "approve")
    assert response.headers["location"] == f"/console/alerts/{alert_id}?done=approve"
    page = approver.get(response.headers["location"]).text
    assert "已审批，预警已发出" in page
    assert re.search(rf'data-testid="alert-approved">{second_officer.username} · ', page)
    assert stored(session, alert_id).status == AlertStatus.active


def test_break_glass_needs_a_real_reason(sign_in: SignIn, users: dict[Role, User], session: Session) -> None:
    client = sign_in(users[Role.duty_officer])
    alert_id = compose(client, level="2")
    shown = confirm_fields(client.get(f"/console/alerts/{alert_id}").text, "break-glass")
    short = act(client, alert_id, "break-glass", **shown, reason="来不及")
    assert_form_error(short, 422, "理由：")
    assert "来不及</textarea>" in short.text
    assert stored(session, alert_id).status == AlertStatus.draft
    reason = "山洪已进村，另一位值班员联系不上，必须立即发布"
    done = act(client, alert_id, "break-glass", **shown, reason=reason)
    assert done.headers["location"].endswith("done=break-glass")
    page = client.get(done.headers["location"]).text
    assert reason in page
    assert stored(session, alert_id).status == AlertStatus.active


def test_a_drill_says_so_in_its_own_colour_everywhere(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    client = sign_in(users[Role.duty_officer])
    alert_id = compose(client, drill="true", title="防汛演练")
    page = client.get(f"/console/alerts/{alert_id}").text
    assert "<title>【演练】防汛演练" in page
    assert 'class="mode-banner mode-banner-drill"' in page
    assert "现在进行应急演练" in page
    assert confirm_fields(page) == {"reach": str(CITY), "drill": "true"}
    assert "确认发送演练到 12 个终端" in page
    assert 'class="btn btn-drill"' in page
    assert act(client, alert_id, "send", reach=CITY, drill="false").status_code == 409
    send(client, alert_id)
    history = client.get("/console/alerts").text
    row = re.search(rf'<tr data-alert="{alert_id}" class="row-drill">(.*?)</tr>', history, re.S)
    assert row is not None
    assert 'class="badge badge-drill" data-testid="drill-badge">演练<' in row.group(1)
    assert "badge-live" not in row.group(1)


# ---- after sending: board, update, cancel ----


def test_the_board_counts_by_town_and_village_and_lists_the_unreached(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    client = sign_in(users[Role.duty_officer])
    alert_id = compose(client)
    send(client, alert_id)
    endpoints = session.exec(select(Endpoint).order_by(col(Endpoint.id))).all()
    sent_at = stored(session, alert_id).sent_at
    assert sent_at is not None
    for n, endpoint in enumerate(endpoints[:5]):
        session.execute(
            update(AlertDelivery)
            .where(col(AlertDelivery.alert_id) == alert_id, col(AlertDelivery.endpoint_id) == endpoint.id)
            .values(
                state=DeliveryState.completed if n < 2 else DeliveryState.delivered,
                delivered_at=sent_at + timedelta(seconds=n + 1),
            )
        )
    endpoints[-1].status = EndpointStatus.offline
    session.add(endpoints[-1])
    session.commit()
    fragment = client.get(f"/console/alerts/{alert_id}/board", headers=HTMX)
    assert fragment.status_code == 200
    text = fragment.text
    assert "<html" not in text
    assert 'hx-trigger="every 2s"' in text
    for testid, value in (("total", 12), ("reached", 5), ("completed", 2), ("offline", 1), ("sent", 6)):
        assert re.search(rf'data-testid="board-{testid}">{value}<', text), testid
    assert "首个 1.0 秒" in text
    assert "最后 5.0 秒" in text
    assert text.count('data-testid="board-town"') == 2
    assert text.count('data-testid="board-village"') == 4
    assert "未送达的终端 · 7 个" in text
    assert text.count('data-testid="unreached-row"') == 7
    assert endpoints[-1].code in text
    assert endpoints[0].code not in text


def test_update_then_cancel_with_the_prepared_all_clear(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    client = sign_in(users[Role.duty_officer])
    alert_id = compose(client)
    send(client, alert_id)
    alert = stored(session, alert_id)
    unchanged = {"text": TEXT, "level": "3", "valid_until": local_text(alert.valid_until, SHANGHAI)}
    refused = act(client, alert_id, "update", **unchanged)
    assert_form_error(refused, 422, "更新内容为空")
    too_long = act(client, alert_id, "update", **{**unchanged, "text": "水" * 5000})
    assert_form_error(too_long, 422, "文本：最多 1000 个字符")
    assert stored(session, alert_id).revision == 1
    done = act(
        client, alert_id, "update", **{**unchanged, "text": "水位继续上涨，请立即转移。", "level": "2"}
    )
    assert done.headers["location"].endswith("done=update")
    alert = stored(session, alert_id)
    assert (alert.revision, alert.level, alert.text) == (2, 2, "水位继续上涨，请立即转移。")

    page = client.get(f"/console/alerts/{alert_id}").text
    assert "第 2 版" in page
    assert "山洪黄色预警解除，请大家恢复正常生产生活。" in page
    assert 'value="险情已解除"' in page
    done = act(client, alert_id, "cancel", reason="险情已解除", all_clear="true")
    assert done.headers["location"].endswith("done=cancel")
    page = client.get(done.headers["location"]).text
    assert "已解除，终端停止播放" in page
    assert re.search(r'data-testid="alert-cancelled">[^<]+ · [^<]+ · 险情已解除<', page)
    assert 'hx-trigger="every 2s"' not in page
    assert "已停止刷新" in page
    messages = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    assert [m.message["alert"]["type"] for m in messages] == ["alert", "alert", "cancel"]
    assert messages[-1].message["alert"]["revision"] == 2
    again = act(client, alert_id, "cancel", reason="险情已解除", all_clear="true")
    assert_form_error(again, 409, "无需重复操作")


# ---- a recorded clip instead of text ----


def clip_alert(client: TestClient, clip: Clip, **overrides: Any) -> int:
    return compose(client, message="clip", clip_id=str(clip.id), text="", **overrides)


def test_the_form_lists_the_playable_clips_by_name_and_duration(
    sign_in: SignIn, users: dict[Role, User], leader_clip: Clip, lost_clip: Clip
) -> None:
    page = sign_in(users[Role.duty_officer]).get("/console/alerts").text
    assert re.search(r'name="message" value="text" checked', page)
    assert re.search(r'<div class="stack clip-choice" data-message="clip" hidden', page)
    options = re.findall(
        r'data-testid="clip-title">([^<]+)<.*?data-testid="clip-duration">([^<]+)<', page, re.S
    )
    assert options == [(LEADER, "00:04")]
    assert f'name="clip_id" value="{leader_clip.id}"' in page
    assert f'data-audio="/api/v1/audio/{leader_clip.blob_sha256}"' in page
    assert LOST not in page
    assert "另有 1 段录音的音频文件在音频存储中找不到，未列出" in page
    assert f"录音前后自动加播“{DRILL_OPENING}”和“{DRILL_CLOSING}”" in page


def test_without_a_playable_clip_the_form_says_so_and_nothing_is_made(
    sign_in: SignIn, users: dict[Role, User], session: Session, lost_clip: Clip
) -> None:
    client = sign_in(users[Role.duty_officer])
    assert "素材库中还没有可播放的录音素材" in client.get("/console/alerts").text
    response = client.post("/console/alerts", data=compose_form(message="clip", text=""))
    assert_form_error(response, 422, "素材库中还没有可播放的录音素材：请宣传人员先在素材库上传录音")
    assert alert_count(session) == 0


@pytest.mark.parametrize(
    ("chosen", "message"),
    [
        ("", "请选择要播放的录音素材：在列表中点选一段录音，或改用文字播报（语音合成）"),
        ("abc", "录音素材：须为数字"),
        ("999999", "录音素材 999999 不存在：请在素材库中选择已有的录音"),
        ("lost", f"录音素材「{LOST}」的音频文件在音频存储中找不到，不能播放：请改选其他录音或改用文字播报"),
    ],
)
def test_a_clip_that_cannot_be_played_is_refused_beside_the_form(
    sign_in: SignIn,
    users: dict[Role, User],
    session: Session,
    leader_clip: Clip,
    lost_clip: Clip,
    chosen: str,
    message: str,
) -> None:
    clip_id = str(lost_clip.id) if chosen == "lost" else chosen
    body = compose_form(message="clip", clip_id=clip_id, text="先写的文字还在")
    response = sign_in(users[Role.duty_officer]).post("/console/alerts", data=body)
    assert_form_error(response, 422, message)
    assert re.search(r'name="message" value="clip" checked', response.text)
    assert re.search(r'<div class="stack clip-choice" data-message="clip"\s+data-testid', response.text)
    assert "先写的文字还在</textarea>" in response.text
    assert alert_count(session) == 0


def test_a_live_clip_alert_plays_the_recording_and_its_pages_name_it(
    sign_in: SignIn, users: dict[Role, User], session: Session, leader_clip: Clip
) -> None:
    client = sign_in(users[Role.duty_officer])
    alert_id = compose(client, message="clip", clip_id=str(leader_clip.id), text=TEXT)
    alert = stored(session, alert_id)
    assert (alert.clip_id, alert.text) == (leader_clip.id, None)
    assert alert.program_duration_ms > leader_clip.duration_ms  # the attention chime comes first
    page = client.get(f"/console/alerts/{alert_id}").text
    assert f'data-testid="alert-spoken">【录音：{LEADER}（00:04）】</blockquote>' in page
    assert DRILL_OPENING not in page
    assert f'data-testid="alert-clip-title">{LEADER}<' in page
    assert 'data-testid="alert-clip-duration">00:04<' in page
    assert f'src="/api/v1/audio/{leader_clip.blob_sha256}" data-testid="alert-clip-audio"' in page
    assert client.get(f"/api/v1/audio/{leader_clip.blob_sha256}").status_code == 200
    assert send(client, alert_id).headers["location"].endswith("done=send")
    page = client.get(f"/console/alerts/{alert_id}").text
    assert re.search(rf'data-testid="board-total">{CITY}<', page)
    history = client.get("/console/alerts").text
    row = re.search(rf'<tr data-alert="{alert_id}"[^>]*>(.*?)</tr>', history, re.S)
    assert row is not None
    assert 'data-testid="clip-mark">录音<' in row.group(1)


def test_a_clip_drill_is_framed_by_the_spoken_drill_words(
    sign_in: SignIn, users: dict[Role, User], session: Session, leader_clip: Clip
) -> None:
    client = sign_in(users[Role.duty_officer])
    live = clip_alert(client, leader_clip)
    drill = clip_alert(client, leader_clip, drill="true", title="防汛演练")
    page = client.get(f"/console/alerts/{drill}").text
    assert f'data-testid="alert-spoken">{DRILL_OPENING}【录音：{LEADER}（00:04）】{DRILL_CLOSING}<' in page
    assert f"录音前后加播：“{DRILL_OPENING}”……“{DRILL_CLOSING}”" in page
    assert confirm_fields(page) == {"reach": str(CITY), "drill": "true"}
    # The spoken opening and closing are in the drill's audio, around the same recording.
    framing_ms = stored(session, drill).program_duration_ms - stored(session, live).program_duration_ms
    assert framing_ms > 3000


def test_a_clip_alert_is_updated_without_text_and_keeps_its_recording(
    sign_in: SignIn, users: dict[Role, User], session: Session, leader_clip: Clip
) -> None:
    client = sign_in(users[Role.duty_officer])
    alert_id = clip_alert(client, leader_clip)
    send(client, alert_id)
    page = client.get(f"/console/alerts/{alert_id}").text
    assert 'data-testid="update-text"' not in page
    assert f"本预警播放录音素材「{LEADER}」，录音不能更换" in page
    alert = stored(session, alert_id)
    program = alert.program_sha256
    unchanged = {
        "title": alert.title,
        "level": "3",
        "repeat": "2",
        "valid_until": local_text(alert.valid_until, SHANGHAI),
    }
    refused = act(client, alert_id, "update", **unchanged)
    assert_form_error(refused, 422, "更新内容为空")
    assert re.search(r'<details open>\s*<summary data-testid="update-toggle">', refused.text)
    changed = {**unchanged, "title": "县长讲话：立即转移", "level": "2", "repeat": "3"}
    assert act(client, alert_id, "update", **changed).headers["location"].endswith("done=update")
    alert = stored(session, alert_id)
    assert (alert.revision, alert.title, alert.level, alert.repeat) == (2, "县长讲话：立即转移", 2, 3)
    assert (alert.clip_id, alert.text, alert.program_sha256) == (leader_clip.id, None, program)
    last = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id).desc())).first()
    assert last is not None
    assert last.message["alert"] == {"id": alert_id, "revision": 2, "type": "alert"}


# ---- history ----


def test_the_history_lists_newest_first_with_level_mode_status_reach_and_time(
    sign_in: SignIn, users: dict[Role, User]
) -> None:
    client = sign_in(users[Role.admin])
    first = compose(client, title="第一条", level="4")
    send(client, first)
    second = compose(client, title="第二条", level="1", drill="true")
    page = client.get("/console/alerts").text
    assert "预警记录 · 共 2 条" in page
    rows = re.findall(r'<tr data-alert="(\d+)"[^>]*>(.*?)</tr>', page, re.S)
    assert [int(alert_id) for alert_id, _ in rows] == [second, first]
    newest, oldest = rows[0][1], rows[1][1]
    assert 'class="level level-1"' in newest
    assert "草稿" in newest
    assert "演练" in newest
    assert 'class="level level-4"' in oldest
    assert "播发中" in oldest
    assert "真实" in oldest
    assert re.search(r'<td class="num">12</td>\s*<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>', oldest)


def test_an_unknown_alert_is_a_404_page(sign_in: SignIn, users: dict[Role, User]) -> None:
    response = sign_in(users[Role.duty_officer]).get("/console/alerts/999999")
    assert response.status_code == 404
    assert "预警 999999 不存在" in response.text


def test_local_text_shows_the_city_wall_clock() -> None:
    assert local_text(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), SHANGHAI) == "2026-07-01T18:00"
