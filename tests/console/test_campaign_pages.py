"""宣传计划, 播出日历 and 播出查询 without a browser: who may open them, the editor's errors shown
beside the form (nothing stored), presets that survive an edit, the workflow buttons and the
service's refusals, the calendar's occurrences and filters, and the why view's scope."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from broadcast.auth.models import Role, User
from broadcast.console.campaign_form import CampaignForm, split_list
from broadcast.console.library import FORM_ERROR_HEADER
from broadcast.content.models import Bulletin
from broadcast.playlists.models import ItemKind, PlaylistItem, PlaylistRevision
from broadcast.regions.models import Village
from broadcast.scheduling.models import Campaign, CampaignStatus
from broadcast.scheduling.recurrence import SHANGHAI
from tests.scheduling.campaign_builders import campaign_count, playlist_revision
from tests.scheduling.rundown_builders import make_campaign

SignIn = Callable[[User], TestClient]
HTMX = {"HX-Request": "true"}
YEAR = 2030


@pytest.fixture
def revision(session: Session, users: dict[Role, User]) -> PlaylistRevision:
    """A rendered playlist revision with a bulletin asking for {fire_risk_level}."""
    revision = playlist_revision(session)
    bulletin = Bulletin(
        title="森林防火期提醒", text="火险等级{fire_risk_level}级", custom_fields=["fire_risk_level"]
    )
    session.add(bulletin)
    session.flush()
    item = PlaylistItem(
        revision_id=revision.id or 0, position=0, kind=ItemKind.bulletin, bulletin_id=bulletin.id
    )
    session.add(item)
    session.commit()
    return revision


def villages(session: Session) -> list[Village]:
    return list(session.exec(select(Village).order_by(col(Village.id))).all())


def form(revision: PlaylistRevision, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "秋季森林防火",
        "playlist_id": str(revision.playlist_id),
        "tags": ["forest"],
        "season_first": f"{YEAR}-10-01",
        "season_last": f"{YEAR + 1}-04-30",
        "preset": "daily",
        "times": "06:40，12:10，18:20",
        "windows": "06:30-07:30，12:00-12:30，18:00-19:00",
        "priority": "5",
        "max_plays_per_day": "3",
        "field_name": ["fire_risk_level"],
        "field_value": ["三"],
    }
    body.update(overrides)
    return body


def create(client: TestClient, revision: PlaylistRevision, **overrides: Any) -> int:
    response = client.post("/console/campaigns", data=form(revision, **overrides), follow_redirects=False)
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/console/campaigns/(\d+)\?done=create", response.headers["location"])
    assert match is not None
    return int(match.group(1))


def assert_form_error(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers[FORM_ERROR_HEADER] == "1"
    for fragment in fragments:
        assert fragment in response.text


def stored(session: Session, campaign_id: int) -> Campaign:
    session.expire_all()
    return session.get_one(Campaign, campaign_id)


# ---- who may open what ----


def test_sections_in_the_navigation(sign_in: SignIn, users: dict[Role, User]) -> None:
    expected = {
        Role.propagandist: ["campaigns", "calendar", "rundowns"],
        Role.duty_officer: ["campaigns", "calendar", "rundowns"],
        Role.village_admin: ["rundowns"],
    }
    for role, sections in expected.items():
        nav = re.findall(r'data-section="(\w+)"', sign_in(users[role]).get("/console/rundowns").text)
        assert [key for key in nav if key in ("campaigns", "calendar", "rundowns")] == sections


@pytest.mark.parametrize("path", ["/console/campaigns", "/console/calendar", "/console/campaigns/new"])
def test_village_admin_cannot_open_campaigns_or_the_calendar(
    sign_in: SignIn, users: dict[Role, User], path: str
) -> None:
    response = sign_in(users[Role.village_admin]).get(path)
    assert response.status_code == 403
    assert "您的角色无权查看「" in response.text


def test_duty_officer_reads_but_cannot_write(
    sign_in: SignIn, users: dict[Role, User], revision: PlaylistRevision, session: Session
) -> None:
    campaign_id = create(sign_in(users[Role.propagandist]), revision)
    officer = sign_in(users[Role.duty_officer])
    listing = officer.get("/console/campaigns")
    assert listing.status_code == 200
    assert "秋季森林防火" in listing.text
    assert "new-campaign" not in listing.text
    detail = officer.get(f"/console/campaigns/{campaign_id}")
    assert detail.status_code == 200
    assert "action-submit" not in detail.text
    for response in (
        officer.get("/console/campaigns/new"),
        officer.post(f"/console/campaigns/{campaign_id}/submit"),
    ):
        assert response.status_code == 403
        assert "值班员可以查看宣传计划" in response.text
    assert stored(session, campaign_id).status == CampaignStatus.draft


# ---- the editor ----


def test_create_stores_the_campaign_and_edit_shows_it_again(
    sign_in: SignIn, users: dict[Role, User], revision: PlaylistRevision, session: Session
) -> None:
    client = sign_in(users[Role.propagandist])
    campaign_id = create(client, revision, exclude_towns=[], exclude_endpoints="")
    campaign = stored(session, campaign_id)
    assert campaign.selector["tags"] == ["forest"]
    assert campaign.field_values == {"fire_risk_level": "三"}
    assert (campaign.season_start, campaign.season_end) == (date(YEAR, 10, 1), date(YEAR + 1, 4, 30))
    detail = client.get(f"/console/campaigns/{campaign_id}?done=create")
    assert "已保存为草稿" in detail.text
    assert "每天 06:40、12:10、18:20" in detail.text
    edit = client.get(f"/console/campaigns/{campaign_id}/edit").text
    assert 'value="06:40，12:10，18:20"' in edit
    assert re.search(r'value="daily" checked', edit)
    assert re.search(r'value="forest" checked', edit)
    assert 'data-testid="campaign-field-fire_risk_level"' in edit
    assert 'value="三"' in edit


@pytest.mark.parametrize(
    "recurrence",
    [
        {"preset": "weekdays", "times": "12:10"},
        {"preset": "every_n_days", "times": "06:40，18:20", "n": "3"},
        {"preset": "dates", "times": "12:10", "dates": f"{YEAR}-11-09，{YEAR}-12-02"},
        {"preset": "rrule", "dtstart": f"{YEAR}-10-05T12:10", "rrule": "FREQ=WEEKLY;BYDAY=SA"},
    ],
)
def test_each_recurrence_form_survives_an_edit(
    sign_in: SignIn,
    users: dict[Role, User],
    revision: PlaylistRevision,
    session: Session,
    recurrence: dict[str, str],
) -> None:
    client = sign_in(users[Role.propagandist])
    campaign_id = create(client, revision, **recurrence)
    shown = CampaignForm.of(stored(session, campaign_id), revision=1, tz=SHANGHAI)
    assert shown.preset == recurrence["preset"]
    for name, value in recurrence.items():
        assert split_list(getattr(shown, name)) == split_list(value)
    response = client.post(
        f"/console/campaigns/{campaign_id}", data=form(revision, **recurrence), follow_redirects=False
    )
    assert response.status_code == 303
    assert stored(session, campaign_id).version == 2


@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        ({"season_last": f"{YEAR}-09-01"}, 422, f"季节结束日期 {YEAR}-09-01 早于开始日期 {YEAR}-10-01"),
        ({"preset": "rrule", "dtstart": f"{YEAR}-10-01T06:40", "rrule": "FREQ=SOMETIMES"}, 422, "FREQ"),
        ({"tags": ["high_rise"]}, 422, "选择范围内目前没有任何终端"),
        ({"tags": []}, 422, "播发范围：选择范围为空"),
        ({"times": "09:00"}, 422, "播出时间 09:00 不在任何播出时段"),
        ({"season_first": "2030-13-01"}, 422, "季节 开始日期：日期格式不对"),
        ({"exception_dates": "明天"}, 422, "例外日 第 1 条：日期格式不对"),
        ({"groups": ["没有的分组"]}, 422, "分组 没有的分组"),
        ({"playlist_id": "999"}, 422, "节目单 999 不存在"),
    ],
)
def test_bad_input_is_shown_beside_the_form_and_nothing_is_stored(
    sign_in: SignIn,
    users: dict[Role, User],
    revision: PlaylistRevision,
    session: Session,
    overrides: dict[str, Any],
    status: int,
    message: str,
) -> None:
    response = sign_in(users[Role.propagandist]).post("/console/campaigns", data=form(revision, **overrides))
    assert_form_error(response, status, message, 'value="秋季森林防火"')
    assert campaign_count(session) == 0


def test_target_preview_counts_and_explains(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    client = sign_in(users[Role.propagandist])
    first = villages(session)[0]
    counted = client.post(
        "/console/campaigns/preview", data={"tags": ["river"], "exclude_villages": [first.code]}
    )
    assert counted.status_code == 200
    assert "将覆盖 4 个终端" in counted.text
    assert len(re.findall('data-testid="town-count"', counted.text)) == 2
    assert "尚未选择播发范围" in client.post("/console/campaigns/preview", data={}).text
    unknown = client.post("/console/campaigns/preview", data={"towns": ["999999999"]}, headers=HTMX)
    assert_form_error(unknown, 422, "乡镇/街道 999999999")


def test_playlist_fragment_offers_revisions_and_custom_fields(
    sign_in: SignIn, users: dict[Role, User], revision: PlaylistRevision
) -> None:
    client = sign_in(users[Role.propagandist])
    fragment = client.get(f"/console/campaigns/playlist?playlist_id={revision.playlist_id}").text
    assert "第 1 版（最新）" in fragment
    assert "campaign-field-fire_risk_level" in fragment
    assert "请先选择节目单" in client.get("/console/campaigns/playlist?playlist_id=abc").text


# ---- the workflow ----


def test_submit_approve_by_another_and_the_buttons_each_sees(
    sign_in: SignIn, users: dict[Role, User], revision: PlaylistRevision, session: Session
) -> None:
    author = sign_in(users[Role.propagandist])
    campaign_id = create(author, revision)
    assert "未发现与其他计划冲突" in author.get(f"/console/campaigns/{campaign_id}/conflicts").text
    submitted = author.post(f"/console/campaigns/{campaign_id}/submit", follow_redirects=True)
    assert "已提交审批" in submitted.text
    assert "未发现与其他计划冲突" in submitted.text
    assert "action-approve" not in submitted.text
    forced = author.post(f"/console/campaigns/{campaign_id}/approve")
    assert_form_error(forced, 403, "不能审批自己提交的计划")
    admin = sign_in(users[Role.admin])
    assert "action-approve" in admin.get(f"/console/campaigns/{campaign_id}").text
    no_reason = admin.post(f"/console/campaigns/{campaign_id}/reject", data={"reason": " "})
    assert_form_error(no_reason, 422, "退回原因：不能为空")
    approved = admin.post(f"/console/campaigns/{campaign_id}/approve", follow_redirects=True)
    assert "已审批通过" in approved.text
    assert stored(session, campaign_id).status == CampaignStatus.approved
    assert_form_error(
        admin.post(f"/console/campaigns/{campaign_id}/resume"), 409, "只有「已暂停」的计划可以恢复"
    )
    assert admin.post(f"/console/campaigns/{campaign_id}/explode").status_code == 404
    feed = admin.get(f"/api/v1/campaigns/{campaign_id}/calendar.ics")
    assert feed.status_code == 200
    assert "RRULE:FREQ=DAILY" in feed.text


def test_submit_before_the_program_is_rendered_says_so(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    unrendered = playlist_revision(session, rendered=False)
    session.commit()
    client = sign_in(users[Role.propagandist])
    campaign_id = create(client, unrendered, field_name=[], field_value=[])
    response = client.post(f"/console/campaigns/{campaign_id}/submit")
    assert_form_error(response, 409, "尚未生成节目")
    assert stored(session, campaign_id).status == CampaignStatus.draft


def test_only_drafts_are_edited_or_deleted(
    sign_in: SignIn, users: dict[Role, User], revision: PlaylistRevision, session: Session
) -> None:
    client = sign_in(users[Role.propagandist])
    campaign_id = create(client, revision)
    client.post(f"/console/campaigns/{campaign_id}/submit")
    edit = client.post(f"/console/campaigns/{campaign_id}", data=form(revision, name="改名"))
    assert_form_error(edit, 409, "不能直接修改", 'value="改名"')
    assert_form_error(client.post(f"/console/campaigns/{campaign_id}/delete"), 409, "只有草稿可以删除")
    client.post(f"/console/campaigns/{campaign_id}/withdraw")
    deleted = client.post(f"/console/campaigns/{campaign_id}/delete", follow_redirects=False)
    assert deleted.status_code == 303
    assert campaign_count(session) == 0


# ---- calendar and why ----


def approved_campaign(
    sign_in: SignIn, users: dict[Role, User], revision: PlaylistRevision, **extra: Any
) -> int:
    campaign_id = create(sign_in(users[Role.propagandist]), revision, **extra)
    sign_in(users[Role.propagandist]).post(f"/console/campaigns/{campaign_id}/submit")
    sign_in(users[Role.admin]).post(f"/console/campaigns/{campaign_id}/approve")
    return campaign_id


def test_calendar_month_week_day_and_filters(
    sign_in: SignIn, users: dict[Role, User], revision: PlaylistRevision, session: Session
) -> None:
    approved_campaign(sign_in, users, revision, tags=[], villages=[villages(session)[0].code])
    client = sign_in(users[Role.duty_officer])
    month = client.get(f"/console/calendar?day={YEAR}-10-15").text
    assert f"{YEAR} 年 10 月" in month
    assert len(re.findall(r"秋季森林防火 ×3", month)) == 31 + 3  # whole weeks: on to Sunday 3 November
    week = client.get(f"/console/calendar?view=week&day={YEAR}-10-02").text
    assert len(re.findall(r"06:40 12:10 18:20 秋季森林防火", week)) == 6
    elsewhere = client.get(f"/console/calendar?day={YEAR}-10-15&village={villages(session)[1].code}").text
    assert "秋季森林防火 ×3" not in elsewhere
    day = client.get(f"/console/calendar/day?day={YEAR}-10-01", headers=HTMX).text
    assert re.findall(r'<span class="mono">(\d\d:\d\d)</span>', day) == ["06:40", "12:10", "18:20"]
    assert client.get("/console/calendar?day=not-a-date").status_code == 422


def test_why_view_for_a_village_and_the_village_admins_scope(
    sign_in: SignIn, users: dict[Role, User], revision: PlaylistRevision, session: Session
) -> None:
    own, other = villages(session)[0], villages(session)[1]
    approved_campaign(sign_in, users, revision, tags=[], towns=[], all="true")
    wang = sign_in(users[Role.village_admin])
    page = wang.get(f"/console/rundowns?village={own.code}&day={YEAR}-10-01")
    assert page.status_code == 200
    assert re.findall(r'data-testid="why-time">([\d:-]+)<', page.text) == [
        "06:40-06:41",
        "12:10-12:11",
        "18:20-18:21",
    ]
    assert "预测" in page.text
    assert "/console/campaigns/" not in page.text
    refused = wang.get(f"/console/rundowns?village={other.code}&day={YEAR}-10-01")
    assert_form_error(refused, 403, other.name)
    missing = wang.get("/console/rundowns?endpoint=NOPE")
    assert_form_error(missing, 404, "NOPE")
    feed = wang.get(f"/api/v1/villages/{own.code}/calendar.ics")
    assert feed.status_code == 200
    assert "秋季森林防火" in feed.text


def test_why_view_shows_moved_and_dropped_plays(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    season = (date(YEAR, 10, 1), date(YEAR, 10, 31))
    plans = (
        ("紧急通知", ("12:00-12:30",), 9),
        ("防汛", ("12:00-12:30",), 5),
        ("交通安全", ("12:10-12:11",), 3),
    )
    for name, windows, priority in plans:
        make_campaign(
            session,
            revision=playlist_revision(session),
            selector={"all": True},
            times=["12:10"],
            season=season,
            windows=windows,
            priority=priority,
            status=CampaignStatus.approved,
            name=name,
        )
    session.commit()
    page = sign_in(users[Role.propagandist]).get(
        f"/console/rundowns?village={villages(session)[0].code}&day={YEAR}-10-01"
    )
    assert re.findall(r'data-testid="why-time">([\d:-]+)<', page.text) == ["12:10-12:11", "12:11-12:12"]
    assert "原定 12:10，被“紧急通知”占用" in page.text
    assert "未播出（1）" in page.text
    assert "被其他计划挤占" in page.text
