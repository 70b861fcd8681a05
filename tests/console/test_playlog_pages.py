"""播放记录 and 统计报表 without a browser, on a hand-made history (the reports SQL itself runs on both
databases in tests/playlog).

Village 0 (the village admin's) has speakers a0, a1, a2; village 1 has b0. Day D is three days
ago: campaign 森林防火 at 08:00 on a0, a1, a2, b0 and again at 08:00 on D+1 on a1; campaign 防溺水
at 18:00 on a0, a1, a2. a0 plays everything, a1 plays the morning, goes offline at 16:02 and
misses everything after; a2 fails the morning (decode_error) and stays silent in the evening.
A live alert at 10:00 reaches a0, a1, b0 (not a2); a drill at 11:00 reaches a0. Reconciled.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session

from broadcast.auth.models import Role, User
from broadcast.clock import utc_now
from broadcast.console import playlog_pages
from broadcast.console.playlog_pages import WEEKDAYS, last_month, since_text
from broadcast.dispatch.models import PlayEventType, PresenceState
from broadcast.playlog.reconcile import reconcile
from broadcast.regions.models import Endpoint, EndpointStatus, Village
from tests import builders
from tests.playlog.report_builders import (
    SHANGHAI,
    alert,
    campaign,
    delivery,
    event,
    local,
    presence,
    slot,
    world,
)

SignIn = Callable[[User], TestClient]


@dataclass
class History:
    day: date
    users: dict[Role, User]
    villages: list[Village]
    a: list[Endpoint]
    b0: Endpoint
    alerts: dict[str, int]
    campaigns: dict[str, int]


def today() -> date:
    return utc_now().astimezone(SHANGHAI).date()


@pytest.fixture
def history(session: Session) -> History:
    made = world(session)
    city = made.city
    a, b0 = list(city.endpoints[0:3]), city.endpoints[3]
    day = today() - timedelta(days=3)
    for endpoint in (*a, b0):
        presence(session, endpoint, PresenceState.online, local(day - timedelta(days=1), "00:00"))
    presence(session, a[1], PresenceState.offline, local(day, "16:02"))
    a[1].status = EndpointStatus.offline
    session.add(a[1])
    fire, water = campaign(session, "森林防火"), campaign(session, "防溺水")
    morning, evening = local(day, "08:00"), local(day, "18:00")
    slots_a = [slot(session, endpoint, fire, morning) for endpoint in (*a, b0)]
    slots_b = [slot(session, endpoint, water, evening) for endpoint in a]
    slot(session, a[1], fire, local(day + timedelta(days=1), "08:00"))
    for endpoint, row in ((a[0], slots_a[0]), (a[1], slots_a[1]), (b0, slots_a[3]), (a[0], slots_b[0])):
        event(session, endpoint, PlayEventType.started, row.starts_at, slot_row=row)
        event(session, endpoint, PlayEventType.completed, row.starts_at + timedelta(minutes=3), slot_row=row)
    event(session, a[2], PlayEventType.failed, morning, slot_row=slots_a[2], reason="decode_error")
    live = alert(session, title="山洪橙色预警", drill=False, sent_at=local(day, "10:00"))
    drill = alert(session, title="防汛演练", drill=True, sent_at=local(day, "11:00"))
    delivery(session, live, a[0], delivered_after_s=2, completed=True)
    delivery(session, live, a[1], delivered_after_s=5)
    delivery(session, live, a[2])
    delivery(session, live, b0, delivered_after_s=3, completed=True)
    delivery(session, drill, a[0], delivered_after_s=1, completed=True)
    event(session, a[0], PlayEventType.completed, local(day, "10:01"), alert=live)
    event(session, b0, PlayEventType.completed, local(day, "10:01"), alert=live)
    event(session, a[0], PlayEventType.completed, local(day, "11:01"), alert=drill)
    session.commit()
    reconcile(session, now=utc_now(), grace=timedelta(minutes=15), recheck=timedelta(days=30))
    session.commit()
    return History(
        day=day,
        users=made.users,
        villages=city.villages,
        a=a,
        b0=b0,
        alerts={"live": live.id or 0, "drill": drill.id or 0},
        campaigns={"fire": fire.id or 0, "water": water.id or 0},
    )


def texts(html: str, testid: str) -> list[str]:
    found = re.findall(rf'data-testid="{testid}"[^>]*>(.*?)</', html, re.S)
    return [re.sub(r"\s+", " ", text).strip() for text in found]


def offline_words(h: History) -> str:
    return f"{WEEKDAYS[h.day.weekday()]} 16:02"


# ---- wording ----


def test_since_text_says_today_yesterday_weekday_or_date() -> None:
    now = datetime(2026, 3, 5, 4, 0, tzinfo=UTC)  # Thursday 12:00 in Shanghai

    def said(*args: int) -> str:
        return since_text(datetime(*args, tzinfo=UTC), now=now, tz=SHANGHAI)

    assert said(2026, 3, 5, 1, 2) == "今天 09:02"
    assert said(2026, 3, 4, 8, 2) == "昨天 16:02"
    assert said(2026, 3, 3, 8, 2) == "周二 16:02"
    assert said(2026, 2, 28, 16, 2) == "周日 00:02"  # Sunday in Shanghai, Saturday in UTC
    assert said(2026, 2, 26, 8, 2) == "2月26日 16:02"
    assert said(2025, 12, 30, 8, 2) == "2025年12月30日 16:02"


def test_last_month_is_the_whole_previous_calendar_month() -> None:
    assert last_month(date(2026, 3, 31)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert last_month(date(2026, 1, 1)) == (date(2025, 12, 1), date(2025, 12, 31))


# ---- who may open what ----


def test_sections_and_the_village_admins_home(client: TestClient, sign_in: SignIn, history: History) -> None:
    for role, user in history.users.items():
        nav = re.findall(r'data-section="(\w+)"', sign_in(user).get("/console/rundowns").text)
        assert "playlog" in nav
        assert "reports" in nav
        if role == Role.village_admin:
            assert nav[0] == "playlog"
    client.cookies.clear()
    wang = history.users[Role.village_admin]
    form = {"username": wang.username, "password": builders.PASSWORD, "next": ""}
    landed = client.post("/console/login", data=form, follow_redirects=False)
    assert landed.headers["location"] == "/console/playlog"
    admin = history.users[Role.admin]
    form = {"username": admin.username, "password": builders.PASSWORD, "next": ""}
    assert client.post("/console/login", data=form, follow_redirects=False).headers["location"] == "/console/"
    assert 'name="next" value=""' in client.get("/console/login").text


def test_a_village_admin_lands_on_her_only_village_and_the_picker_lists_only_it(
    sign_in: SignIn, history: History
) -> None:
    html = sign_in(history.users[Role.village_admin]).get("/console/playlog").text
    own = history.villages[0]
    assert re.findall(r'<option value="(\d+)"', html) == [own.code]
    assert f'<option value="{own.code}" selected>' in html
    assert own.name in texts(html, "village-name")[0]
    assert f'value="{today().isoformat()}"' in html
    assert f"{today().month} 月 {today().day} 日的计划与实际播出" in html


def test_another_village_is_a_403_page_on_every_page(sign_in: SignIn, history: History) -> None:
    client = sign_in(history.users[Role.village_admin])
    other = history.villages[1].code
    for path in (
        f"/console/playlog?village={other}",
        f"/console/playlog/events?village={other}&day={history.day}&cursor=x",
        f"/console/reports?village={other}",
        f"/console/reports?view=health&town={history.villages[2].code[:9]}",
        f"/console/reports/alerts/{history.alerts['live']}?village={other}",
    ):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "无权查看" in texts(response.text, "error-message")[0]


def test_city_staff_pick_among_all_villages(sign_in: SignIn, history: History) -> None:
    html = sign_in(history.users[Role.duty_officer]).get("/console/playlog").text
    assert re.findall(r'<option value="(\d+)"', html) == [v.code for v in history.villages]
    assert texts(html, "playlog-empty") == ["请选择一个村（社区）查看当天的播出计划和实际播出"]


def test_bad_codes_and_dates_are_422_pages(sign_in: SignIn, history: History) -> None:
    client = sign_in(history.users[Role.admin])
    unknown = client.get("/console/playlog?village=999999999999")
    assert unknown.status_code == 422
    assert "未知的村（社区）代码：999999999999" in unknown.text
    assert client.get("/console/playlog?day=2026-13-01").status_code == 422


# ---- the village page ----


def test_the_village_day_plan_and_actual_with_the_offline_line(sign_in: SignIn, history: History) -> None:
    h = history
    html = sign_in(h.users[Role.village_admin]).get(f"/console/playlog?day={h.day}").text
    rows = re.findall(r'data-testid="slot-row" data-endpoint="(\w+)" data-status="(\w+)"', html)
    a0, a1, a2 = (e.code for e in h.a)
    assert rows == [
        (a0, "played"),
        (a1, "played"),
        (a2, "failed"),
        (a0, "played"),
        (a1, "missed"),
        (a2, "missed"),
    ]
    assert texts(html, "slot-outcome") == [
        "已播",
        "已播",
        "失败（decode_error）",
        "已播",
        f"未播（离线，自 {offline_words(h)} 起）",
        "未播（在线但未播）",
    ]
    assert texts(html, "plan-counts") == ["已播 3 · 部分 0 · 失败 1 · 未播 2 · 待核对 0"]
    assert texts(html, "dead-text") == [f"离线自 {offline_words(h)}"]
    assert re.findall(r'data-testid="dead-speaker" data-code="(\w+)"', html) == [a1]
    assert h.b0.code not in html
    # the alerts the village heard, the drill marked
    assert texts(html, "alerts-title") == ["当天的紧急插播 · 2 条"]
    assert texts(html, "drill-badge") == ["演练"]
    assert texts(html, "live-badge") == ["真实"]
    assert texts(html, "events-title") == ["终端上报的播放记录 · 共 9 条"]
    next_day = sign_in(h.users[Role.village_admin]).get(f"/console/playlog?day={h.day + timedelta(days=1)}")
    assert texts(next_day.text, "slot-outcome") == [f"未播（离线，自 {offline_words(h)} 起）"]


def test_the_raw_log_pages_with_more(
    sign_in: SignIn, history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(playlog_pages, "EVENTS_PAGE", 4)
    client = sign_in(history.users[Role.village_admin])
    html = client.get(f"/console/playlog?day={history.day}").text
    seen = html.count('data-testid="event-row"')
    more = re.search(r'hx-get="([^"]+)"', html)
    pages = 1
    while more:
        fragment = client.get(unquote(more.group(1)).replace("&amp;", "&"), headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        assert "<html" not in fragment.text
        seen += fragment.text.count('data-testid="event-row"')
        more = re.search(r'hx-get="([^"]+)"', fragment.text)
        pages += 1
    assert (seen, pages) == (9, 3)
    assert (
        client.get(
            f"/console/playlog/events?village={history.villages[0].code}&day={history.day}&cursor=x"
        ).status_code
        == 422
    )


def test_export_links_cover_last_month_and_work_with_the_cookie(sign_in: SignIn, history: History) -> None:
    client = sign_in(history.users[Role.village_admin])
    html = client.get("/console/playlog").text
    first, last = last_month(today())
    links = dict(re.findall(r'href="(/api/v1/[^"]+)" data-testid="(export-[\w-]+)"', html))
    by_id = {testid: url.replace("&amp;", "&") for url, testid in links.items()}
    assert set(by_id) == {"export-log-xlsx", "export-log-csv", "export-slots-xlsx", "export-coverage-xlsx"}
    for testid, url in by_id.items():
        params = parse_qs(urlsplit(url).query)
        assert params["from"] == [first.isoformat()]
        assert params["to"] == [last.isoformat()]
        assert params["village"] == [history.villages[0].code]
        response = client.get(url)
        assert response.status_code == 200, response.text
        if testid.endswith("xlsx"):
            sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
            assert next(sheet.iter_rows(values_only=True))[0] in ("播放时间", "计划开始", "宣传计划")
        else:
            assert response.content.startswith("\ufeff播放时间".encode())


# ---- the reports ----


def _report(client: TestClient, h: History, **params: str) -> str:
    query = {"from": h.day.isoformat(), "to": (h.day + timedelta(days=1)).isoformat(), **params}
    response = client.get("/console/reports", params=query)
    assert response.status_code == 200, response.text
    return response.text


def _cells(html: str, testid: str) -> list[list[str]]:
    rows = re.findall(rf'<tr data-testid="{testid}"[^>]*>(.*?)</tr>', html, re.S)
    return [
        [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S)]
        for r in rows
    ]


def test_coverage_per_campaign_and_village_in_the_admins_scope(sign_in: SignIn, history: History) -> None:
    h = history
    html = _report(sign_in(h.users[Role.village_admin]), h)
    assert _cells(html, "coverage-campaign") == [
        ["森林防火", "4", "2", "0", "1", "1", "0", "50.0%"],
        ["防溺水", "3", "1", "0", "0", "2", "0", "33.3%"],
    ]
    assert _cells(html, "coverage-total") == [["合计", "7", "3", "0", "1", "3", "0", "42.9%"]]
    assert {row[2] for row in _cells(html, "coverage-row")} == {h.villages[0].name}
    city = _report(sign_in(h.users[Role.admin]), h, campaign=str(h.campaigns["fire"]))
    assert _cells(city, "coverage-campaign") == [["森林防火", "5", "3", "0", "1", "1", "0", "60.0%"]]
    links = re.findall(r'href="(/api/v1/reports/coverage[^"]+)" data-testid="report-xlsx"', city)
    assert f"campaign={h.campaigns['fire']}" in links[0]


def test_daily_alerts_and_health_reports(sign_in: SignIn, history: History) -> None:
    h = history
    client = sign_in(h.users[Role.village_admin])
    daily = _cells(_report(client, h, view="daily"), "daily-row")
    assert [row[0] for row in daily] == [h.day.isoformat(), (h.day + timedelta(days=1)).isoformat()]
    assert daily[0][4:14] == ["6", "3", "0", "1", "2", "0", "50.0%", "1", "1", daily[0][13]]
    alerts = _report(client, h, view="alerts")
    drill, live = (row[1:] for row in _cells(alerts, "alert-report-row"))
    assert drill == ["防汛演练", "III级（黄色）", "演练", "1", "1", "1", "0"]
    assert live == ["山洪橙色预警", "III级（黄色）", "真实", "3", "2", "1", "1"]
    week = {"from": (today() - timedelta(days=6)).isoformat(), "to": today().isoformat()}
    health = _report(client, h, view="health", **week)
    assert re.findall(r'data-testid="health-row" data-code="(\w+)"', health)[0] == h.a[1].code
    assert texts(health, "chronic") == ["长期离线"]
    assert "共 3 个终端" in texts(health, "health-summary")[0]


def test_one_alerts_delivery_with_latencies_and_never_reached(sign_in: SignIn, history: History) -> None:
    h = history
    client = sign_in(h.users[Role.admin])
    html = client.get(f"/console/reports/alerts/{h.alerts['live']}").text
    assert texts(html, "delivery-endpoints") == ["4"]
    assert texts(html, "delivery-unreached") == ["1"]
    assert texts(html, "delivery-latency") == ["3.0 秒"]
    assert re.findall(r'data-testid="unreached-row" data-code="(\w+)"', html) == [h.a[2].code]
    # the never-reached table first, then every endpoint in code order
    assert texts(html, "delivered-after") == ["—", "2.0 秒", "5.0 秒", "—", "3.0 秒"]
    scoped = sign_in(h.users[Role.village_admin]).get(f"/console/reports/alerts/{h.alerts['live']}").text
    assert texts(scoped, "delivery-endpoints") == ["3"]
    assert h.b0.code not in scoped
    assert client.get("/console/reports/alerts/999999").status_code == 404


def test_report_filter_errors_are_shown_beside_the_form(sign_in: SignIn, history: History) -> None:
    client = sign_in(history.users[Role.propagandist])
    backwards = client.get("/console/reports", params={"from": "2026-03-05", "to": "2026-03-01"})
    assert backwards.status_code == 422
    assert "必须晚于开始时间" in texts(backwards.text, "report-error")[0]
    assert 'data-testid="report-form"' in backwards.text
    too_long = client.get("/console/reports", params={"from": "2025-01-01", "to": "2026-01-01"})
    assert too_long.status_code == 422
    assert "时间范围最长 93 天" in texts(too_long.text, "report-error")[0]
    unknown = client.get("/console/reports", params={"campaign": "999999"})
    assert unknown.status_code == 422
    assert "宣传计划 999999 不存在" in unknown.text
    # an unknown view falls back to coverage
    assert 'data-testid="tab-coverage" class="active"' in client.get("/console/reports?view=x").text
