"""The play log, plan versus actual, the reports and their exports, on one hand-made day.

Village 0 (the village admin's) has speakers a0, a1, a2; village 1 has b0. On day D (a week ago):
campaign A at 08:00 on a0, a1, a2, b0; campaign B at 16:00 on a0, a1, a2. a0 plays everything;
a1 plays A, then goes offline at 14:02 and misses B; a2 fails A (decode_error) and stays silent
for B while online. A live flood alert at 10:00 reaches a0, a1, b0 (not a2); a drill at 11:00
reaches a0. Reconciliation has run.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session

from broadcast.auth.models import Role
from broadcast.clock import utc_now
from broadcast.dispatch.models import PlayEventType, PresenceState
from broadcast.playlog import queries
from broadcast.playlog.reconcile import reconcile
from broadcast.regions.models import Endpoint, EndpointStatus, Village
from tests.conftest import bearer
from tests.playlog.report_builders import (
    alert,
    campaign,
    delivery,
    event,
    local,
    presence,
    slot,
    week_ago,
    world,
)

A_ROLE, P_ROLE, D_ROLE, V_ROLE = Role.admin, Role.propagandist, Role.duty_officer, Role.village_admin


@dataclass
class History:
    day: date
    headers: dict[Role, dict[str, str]]
    villages: list[Village]
    a: list[Endpoint]
    b0: Endpoint
    campaigns: dict[str, int]
    alerts: dict[str, int]
    offline_at: datetime


@pytest.fixture
def history(session: Session) -> History:
    made = world(session)
    city = made.city
    a, b0 = city.endpoints[0:3], city.endpoints[3]
    day = week_ago()
    since = local(day - timedelta(days=1), "00:00")
    for endpoint in (*a, b0):
        presence(session, endpoint, PresenceState.online, since)
    offline_at = local(day, "14:02")
    presence(session, a[1], PresenceState.offline, offline_at)
    a[1].status = EndpointStatus.offline
    session.add(a[1])
    plan_a, plan_b = campaign(session, "森林防火"), campaign(session, "防溺水")
    morning, evening = local(day, "08:00"), local(day, "16:00")
    slots_a = [slot(session, endpoint, plan_a, morning) for endpoint in (*a, b0)]
    slots_b = [slot(session, endpoint, plan_b, evening) for endpoint in a]
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
    reconcile(session, now=utc_now(), grace=timedelta(minutes=15), recheck=timedelta(hours=48))
    session.commit()
    return History(
        day=day,
        headers={role: bearer(user) for role, user in made.users.items()},
        villages=city.villages,
        a=list(a),
        b0=b0,
        campaigns={"A": plan_a.id or 0, "B": plan_b.id or 0},
        alerts={"live": live.id or 0, "drill": drill.id or 0},
        offline_at=offline_at,
    )


def _get(client: TestClient, h: History, path: str, role: Role = A_ROLE, **params: Any) -> Any:
    dated = "/alerts/" not in path  # one alert's report has no date range
    response = client.get(
        path, params={"from": h.day.isoformat(), **params} if dated else params, headers=h.headers[role]
    )
    assert response.status_code == 200, response.text
    return response.json()


# The play log ---------------------------------------------------------------------------------


def test_play_log_filters_and_totals(client: TestClient, history: History) -> None:
    h = history
    day = {"to": h.day.isoformat()}
    assert _get(client, h, "/api/v1/playlog", **day)["total"] == 12
    assert _get(client, h, "/api/v1/playlog", drill="false", **day)["total"] == 11
    drills = _get(client, h, "/api/v1/playlog", drill="true", **day)
    assert [(e["alert_title"], e["drill"]) for e in drills["items"]] == [("防汛演练", True)]
    assert _get(client, h, "/api/v1/playlog", type="completed", **day)["total"] == 7
    assert _get(client, h, "/api/v1/playlog", campaign=h.campaigns["B"], **day)["total"] == 2
    assert _get(client, h, "/api/v1/playlog", alert=h.alerts["live"], **day)["total"] == 2
    assert (
        _get(client, h, "/api/v1/playlog", endpoint=h.a[2].code, **day)["items"][0]["reason"]
        == "decode_error"
    )
    assert _get(client, h, "/api/v1/playlog", village=h.villages[1].code, **day)["total"] == 3
    town = _get(client, h, "/api/v1/playlog", town=h.villages[0].code[:9], **day)
    assert town["total"] == 12
    first = _get(client, h, "/api/v1/playlog", **day)["items"][0]
    assert first["type_label"] == "开始播放"
    assert first["campaign_name"] == "森林防火"
    # the day after has nothing
    after = (h.day + timedelta(days=1)).isoformat()
    assert _get(client, h, "/api/v1/playlog", **{"from": after, "to": after})["total"] == 0


def _every_page(client: TestClient, h: History, path: str, limit: int) -> list[Any]:
    """The day's pages of ``limit`` items, following ``next_cursor`` to the end."""
    pages = [_get(client, h, path, to=h.day.isoformat(), limit=limit)]
    while cursor := pages[-1]["next_cursor"]:
        pages.append(_get(client, h, path, to=h.day.isoformat(), limit=limit, cursor=cursor))
    return pages


def test_keyset_pages_cover_everything_once(client: TestClient, history: History) -> None:
    h = history
    pages = _every_page(client, h, "/api/v1/playlog", limit=5)
    assert [page["total"] for page in pages] == [12, 12, 12]
    seen = [item["id"] for page in pages for item in page["items"]]
    assert len(seen) == len(set(seen)) == 12
    times = [
        e["occurred_at"] for e in _get(client, h, "/api/v1/playlog", to=h.day.isoformat(), limit=500)["items"]
    ]
    assert times == sorted(times)


def test_slot_pages_cover_everything_once_in_start_order(client: TestClient, history: History) -> None:
    h = history
    everything = _get(client, h, "/api/v1/playlog/slots", to=h.day.isoformat(), limit=500)["items"]
    assert len(everything) == 7  # four at 08:00, three at 16:00: a page of 3 ends inside the first four
    pages = _every_page(client, h, "/api/v1/playlog/slots", limit=3)
    assert [page["total"] for page in pages] == [7, 7, 7]
    seen = [item["slot_id"] for page in pages for item in page["items"]]
    assert seen == [item["slot_id"] for item in everything]
    assert len(set(seen)) == 7


def test_village_admin_sees_only_her_village(client: TestClient, history: History) -> None:
    h = history
    mine = _get(client, h, "/api/v1/playlog", V_ROLE, to=h.day.isoformat())
    assert mine["total"] == 9
    assert {e["village_code"] for e in mine["items"]} == {h.villages[0].code}
    other = h.villages[1]
    for params in ({"village": other.code}, {"endpoint": h.b0.code}, {"town": h.villages[2].code[:9]}):
        response = client.get("/api/v1/playlog", params=params, headers=h.headers[V_ROLE])
        assert response.status_code == 403, response.text
    response = client.get("/api/v1/playlog", params={"village": other.code}, headers=h.headers[V_ROLE])
    assert other.name in response.json()["error"]["message"]
    report = client.get("/api/v1/reports/coverage", params={"village": other.code}, headers=h.headers[V_ROLE])
    assert report.status_code == 403


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "2026-13-01"}, "不是有效日期"),
        ({"from": "yesterday"}, "无法识别"),
        ({"from": "2026-11-03T08:00:00"}, "缺少时区"),
        ({"from": "2026-11-05", "to": "2026-11-03"}, "必须晚于"),
        ({"from": "2026-01-01", "to": "2026-06-30"}, "最长 93 天"),
        ({"cursor": "not-a-cursor"}, "游标"),
        ({"village": "999999999999"}, "未知的村"),
        ({"town": "000000000"}, "未知的乡镇"),
        ({"endpoint": "NOPE"}, "未知的终端"),
        ({"campaign": 999999}, "宣传计划 999999 不存在"),
        ({"alert": 999999}, "紧急插播 999999 不存在"),
        ({"type": "exploded"}, "未知的事件类型"),
        ({"format": "pdf"}, "未知的导出格式"),
        ({"limit": 0}, "limit"),
        ({"colour": "red"}, "未知的查询参数"),
    ],
)
def test_bad_input_is_a_precise_422(
    client: TestClient, history: History, params: dict[str, Any], words: str
) -> None:
    response = client.get("/api/v1/playlog", params=params, headers=history.headers[A_ROLE])
    assert response.status_code == 422, response.text
    assert words in response.json()["error"]["message"]


def test_aware_times_and_an_unencoded_plus(client: TestClient, history: History) -> None:
    h = history
    start = f"{h.day.isoformat()}T09:30:00+08:00"
    end = f"{h.day.isoformat()}T12:00:00+08:00"
    url = f"/api/v1/playlog?from={start}&to={quote(end)}"  # '+' in from arrives as a space
    response = client.get(url, headers=h.headers[A_ROLE])
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 3  # the live alert twice, the drill once


# Plan versus actual: the scenario -------------------------------------------------------------


def test_wang_sees_the_missed_slots_and_when_the_speaker_went_offline(
    client: TestClient, history: History
) -> None:
    h = history
    page = _get(client, h, "/api/v1/playlog/slots", V_ROLE, to=h.day.isoformat())
    assert page["total"] == 6
    by_code = {(s["endpoint_code"], s["campaign_name"]): s for s in page["items"]}
    missed = by_code[(h.a[1].code, "防溺水")]
    assert (missed["status"], missed["status_label"], missed["cause"], missed["cause_label"]) == (
        "missed",
        "未播出",
        "offline",
        "离线",
    )
    assert datetime.fromisoformat(missed["offline_since"]) == h.offline_at
    silent = by_code[(h.a[2].code, "防溺水")]
    assert (silent["cause"], silent["cause_label"], silent["offline_since"]) == ("silent", "在线未播", None)
    assert by_code[(h.a[2].code, "森林防火")]["cause"] == "decode_error"
    only_missed = _get(client, h, "/api/v1/playlog/slots", V_ROLE, to=h.day.isoformat(), status="missed")
    assert only_missed["total"] == 2
    today = _get(client, h, "/api/v1/playlog/slots", V_ROLE, **{"from": utc_now().date().isoformat()})
    assert today["total"] == 0
    bad = client.get("/api/v1/playlog/slots", params={"status": "lost"}, headers=h.headers[V_ROLE])
    assert bad.status_code == 422
    assert "pending" in bad.json()["error"]["message"]


def test_wang_exports_the_log_as_xlsx_with_chinese_headers(client: TestClient, history: History) -> None:
    h = history
    response = client.get(
        "/api/v1/playlog",
        params={"from": h.day.isoformat(), "to": h.day.isoformat(), "format": "xlsx"},
        headers=h.headers[V_ROLE],
    )
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert f"filename*=UTF-8''{quote('播放记录_' + h.day.isoformat())}.xlsx" in disposition
    assert f'filename="playlog_{h.day.isoformat()}.xlsx"' in disposition
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:6] == ("播放时间", "事件", "乡镇（街道）", "村（社区）", "终端编号", "终端名称")
    assert len(rows) == 10
    assert {row[3] for row in rows[1:]} == {h.villages[0].name}
    assert rows[1][0] == f"{h.day.isoformat()} 08:00:00"
    assert rows[1][1] == "开始播放"


# Reports --------------------------------------------------------------------------------------


def test_coverage_per_campaign_and_village(client: TestClient, history: History) -> None:
    h = history
    report = _get(client, h, "/api/v1/reports/coverage", to=h.day.isoformat())
    rows = {(r["campaign_name"], r["village_code"]): r for r in report["rows"]}
    v0, v1 = h.villages[0].code, h.villages[1].code
    figures = {
        key: (r["planned"], r["played"], r["failed"], r["missed"], r["played_pct"]) for key, r in rows.items()
    }
    assert figures == {
        ("森林防火", v0): (3, 2, 1, 0, 66.7),
        ("森林防火", v1): (1, 1, 0, 0, 100.0),
        ("防溺水", v0): (3, 1, 0, 2, 33.3),
    }
    campaigns = {c["campaign_name"]: (c["planned"], c["played"], c["missed"]) for c in report["campaigns"]}
    assert campaigns == {"森林防火": (4, 3, 0), "防溺水": (3, 1, 2)}
    total = report["total"]
    assert (total["planned"], total["played"], total["failed"], total["missed"], total["played_pct"]) == (
        7,
        4,
        1,
        2,
        57.1,
    )
    mine = _get(client, h, "/api/v1/reports/coverage", V_ROLE, to=h.day.isoformat())
    assert {r["village_code"] for r in mine["rows"]} == {v0}
    assert mine["total"]["planned"] == 6


def test_coverage_as_csv_with_bom_and_xlsx_with_two_sheets(client: TestClient, history: History) -> None:
    h = history
    params = {"from": h.day.isoformat(), "to": h.day.isoformat()}
    response = client.get(
        "/api/v1/reports/coverage", params={**params, "format": "csv"}, headers=h.headers[V_ROLE]
    )
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "宣传计划",
        "乡镇（街道）",
        "村（社区）",
        "计划",
        "已播出",
        "部分播出",
        "播放失败",
        "未播出",
        "待核对",
        "播出率（%）",
    ]
    assert sorted((r[0], r[3], r[4], r[7]) for r in rows[1:]) == [
        ("森林防火", "3", "2", "0"),
        ("防溺水", "3", "1", "2"),
    ]
    book = load_workbook(
        io.BytesIO(
            client.get(
                "/api/v1/reports/coverage", params={**params, "format": "xlsx"}, headers=h.headers[V_ROLE]
            ).content
        )
    )
    assert book.sheetnames == ["按计划和村", "按计划汇总"]
    summary = list(book["按计划汇总"].iter_rows(values_only=True))
    assert summary[0][:5] == ("宣传计划", "计划", "已播出", "部分播出", "播放失败")
    assert sorted(summary[1:]) == sorted(
        [("森林防火", 3, 2, 0, 1, 0, 0, 66.7), ("防溺水", 3, 1, 0, 0, 2, 0, 33.3)]
    )


def test_daily_summary_counts_live_alerts_apart_from_drills(client: TestClient, history: History) -> None:
    h = history
    report = _get(client, h, "/api/v1/reports/daily", to=h.day.isoformat())
    assert len(report["rows"]) == 4  # four villages, one day
    row = next(r for r in report["rows"] if r["village_code"] == h.villages[0].code)
    assert (row["planned"], row["played"], row["failed"], row["missed"]) == (6, 3, 1, 2)
    assert (row["alerts_played"], row["drills_played"], row["endpoints"]) == (1, 1, 3)
    online = 2 * 86400 + 14 * 3600 + 2 * 60
    assert row["online_pct"] == round(100 * online / (3 * 86400), 1)
    other = next(r for r in report["rows"] if r["village_code"] == h.villages[1].code)
    assert (other["alerts_played"], other["drills_played"]) == (1, 0)
    assert other["online_pct"] == round(100 / 3, 1)  # b0 online, b1 and b2 never connected
    xlsx = client.get(
        "/api/v1/reports/daily",
        params={"from": h.day.isoformat(), "to": h.day.isoformat(), "format": "xlsx"},
        headers=h.headers[D_ROLE],
    )
    header = next(load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert header[-3:] == ("紧急插播（实战）", "演练", "在线率（%）")


def test_alert_delivery_report_and_the_never_reached(client: TestClient, history: History) -> None:
    h = history
    report = _get(client, h, f"/api/v1/reports/alerts/{h.alerts['live']}", D_ROLE)
    assert (report["endpoints"], report["delivered"], report["completed"], report["never_reached"]) == (
        4,
        3,
        2,
        1,
    )
    assert report["drill"] is False
    assert report["delivered_median_s"] == 3.0
    assert [r["endpoint_code"] for r in report["unreached"]] == [h.a[2].code]
    assert report["unreached"][0]["state_label"] == "未送达"
    latencies = {r["endpoint_code"]: r["delivered_after_s"] for r in report["rows"]}
    assert latencies == {h.a[0].code: 2.0, h.a[1].code: 5.0, h.a[2].code: None, h.b0.code: 3.0}
    mine = _get(client, h, f"/api/v1/reports/alerts/{h.alerts['live']}", V_ROLE)
    assert mine["endpoints"] == 3
    book = load_workbook(
        io.BytesIO(
            client.get(
                f"/api/v1/reports/alerts/{h.alerts['live']}",
                params={"format": "xlsx"},
                headers=h.headers[D_ROLE],
            ).content
        )
    )
    unreached = list(book["未送达"].iter_rows(values_only=True))
    assert unreached[0][4] == "送达状态"
    assert len(unreached) == 2
    assert unreached[1][2] == h.a[2].code
    missing = client.get("/api/v1/reports/alerts/999999", headers=h.headers[D_ROLE])
    assert missing.status_code == 404
    assert "999999" in missing.json()["error"]["message"]


def test_alerts_list_keeps_drills_apart(client: TestClient, history: History) -> None:
    h = history
    report = _get(client, h, "/api/v1/reports/alerts", P_ROLE, to=h.day.isoformat())
    assert [(r["title"], r["drill"], r["never_reached"]) for r in report["rows"]] == [
        ("防汛演练", True, 0),
        ("山洪橙色预警", False, 1),
    ]
    live = _get(client, h, "/api/v1/reports/alerts", P_ROLE, to=h.day.isoformat(), drill="false")
    assert [r["title"] for r in live["rows"]] == ["山洪橙色预警"]
    csv_response = client.get(
        "/api/v1/reports/alerts",
        params={"from": h.day.isoformat(), "to": h.day.isoformat(), "format": "csv"},
        headers=h.headers[P_ROLE],
    )
    rows = list(csv.reader(io.StringIO(csv_response.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["编号", "标题", "级别", "类别", "演练"]
    assert rows[1][4] == "是"
    assert rows[1][3] == "山洪/洪涝"


def test_endpoint_health_finds_the_chronically_offline(client: TestClient, history: History) -> None:
    h = history
    start = (h.day - timedelta(days=1)).isoformat()
    report = _get(client, h, "/api/v1/reports/health", V_ROLE, **{"from": start, "to": h.day.isoformat()})
    rows = {r["endpoint_code"]: r for r in report["rows"]}
    assert report["endpoints"] == 3
    assert rows[h.a[0].code]["online_pct"] == 100.0
    assert not rows[h.a[0].code]["chronic"]
    went = rows[h.a[1].code]
    assert went["online_pct"] == round(100 * (86400 + 14 * 3600 + 120) / (2 * 86400), 1)
    assert went["chronic"]  # offline for a week
    assert datetime.fromisoformat(went["offline_since"]) == h.offline_at
    assert report["chronic"] == 1
    assert report["rows"][0]["endpoint_code"] == h.a[1].code  # the chronic first
    chronic = _get(
        client,
        h,
        "/api/v1/reports/health",
        A_ROLE,
        **{"from": start, "to": h.day.isoformat()},
        chronic="true",
    )
    codes = {r["endpoint_code"] for r in chronic["rows"]}
    assert h.a[1].code in codes
    assert h.a[0].code not in codes
    assert h.b0.code not in codes
    assert chronic["endpoints"] == 12
    assert len(codes) == chronic["chronic"]


def test_exports_write_formula_like_text_as_text(
    client: TestClient, history: History, session: Session
) -> None:
    h = history
    endpoint = session.get_one(Endpoint, h.a[0].id)
    endpoint.name = '=HYPERLINK("http://x")'
    session.add(endpoint)
    session.commit()
    params = {"from": h.day.isoformat(), "to": h.day.isoformat(), "endpoint": h.a[0].code}
    csv_body = client.get("/api/v1/playlog", params={**params, "format": "csv"}, headers=h.headers[A_ROLE])
    assert "'=HYPERLINK" in csv_body.content.decode("utf-8-sig")
    xlsx = client.get("/api/v1/playlog", params={**params, "format": "xlsx"}, headers=h.headers[A_ROLE])
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    cell = sheet.cell(row=2, column=6)
    assert cell.value == '=HYPERLINK("http://x")'
    assert cell.data_type == "s"


def test_plan_versus_actual_as_csv_in_start_order(client: TestClient, history: History) -> None:
    h = history
    params = {"from": h.day.isoformat(), "to": h.day.isoformat()}
    response = client.get(
        "/api/v1/playlog/slots", params={**params, "format": "csv"}, headers=h.headers[V_ROLE]
    )
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert f"filename*=UTF-8''{quote('计划与实播_' + h.day.isoformat())}.csv" in disposition
    assert f'filename="slots_{h.day.isoformat()}.csv"' in disposition
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["计划开始", "计划结束"]
    listed = _get(client, h, "/api/v1/playlog/slots", V_ROLE, **params)["items"]
    assert [row[5] for row in rows[1:]] == [item["endpoint_name"] for item in listed]
    assert [row[7] for row in rows[1:]] == [item["status_label"] for item in listed]


def test_an_export_beyond_the_row_cap_is_refused(
    client: TestClient, history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = history
    params = {"from": h.day.isoformat(), "to": h.day.isoformat(), "format": "csv"}
    monkeypatch.setattr(queries, "EXPORT_MAX_ROWS", 11)
    refused = client.get("/api/v1/playlog", params=params, headers=h.headers[A_ROLE])
    assert refused.status_code == 422
    assert "要导出 12 行，超过上限 11 行" in refused.json()["error"]["message"]
    assert client.get("/api/v1/playlog/slots", params=params, headers=h.headers[A_ROLE]).status_code == 200
    monkeypatch.setattr(queries, "EXPORT_MAX_ROWS", 12)
    allowed = client.get("/api/v1/playlog", params=params, headers=h.headers[A_ROLE])
    assert allowed.status_code == 200
    assert len(list(csv.reader(io.StringIO(allowed.content.decode("utf-8-sig"))))) == 13
