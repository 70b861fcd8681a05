"""An endpoint's page (rundown, connection, plays), the refresh push, and live presence on the list."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect
from sqlmodel import Session, select
from websockets.sync.client import connect

from broadcast.auth.audit import CLI
from broadcast.auth.models import AuditEntry, Role, User
from broadcast.clock import utc_now
from broadcast.dispatch import presence
from broadcast.dispatch.models import PlayEvent, PlayEventType
from broadcast.dispatch.presence import Reason
from broadcast.regions.models import Endpoint
from broadcast.regions.tokens import issue_token
from broadcast.scheduling.models import SlotStatus
from tests.console.conftest import ConsoleSite, SignedIn, access_token
from tests.dispatch.conftest import make_campaign, make_revision, make_slot

SignIn = Callable[[User], TestClient]
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _endpoint(users: dict[Role, User], session: Session, index: int = 0) -> Endpoint:
    return session.exec(select(Endpoint).order_by(Endpoint.id)).all()[index]  # type: ignore[arg-type]


def test_detail_shows_rundown_connection_and_plays(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    endpoint = _endpoint(users, session)
    now = utc_now()
    revision = make_revision(session)
    campaign = make_campaign(session, revision)
    campaign.name = "森林防火宣传"
    noon = datetime.combine(now.astimezone(SHANGHAI).date(), time(12), tzinfo=SHANGHAI)
    slot = make_slot(session, endpoint=endpoint, campaign=campaign, starts_at=noon)
    dropped = make_slot(session, endpoint=endpoint, campaign=campaign, starts_at=noon + timedelta(days=1))
    dropped.status, dropped.detail = SlotStatus.dropped, "静默时段"
    presence.mark_online(
        session, endpoint_id=endpoint.id or 0, address="10.8.0.7", at=now - timedelta(minutes=3)
    )
    presence.record_seen(
        session, seen={endpoint.id or 0: now - timedelta(seconds=12)}, firmware={endpoint.id or 0: "3.1.4"}
    )
    session.add(
        PlayEvent(
            endpoint_id=endpoint.id or 0,
            event_id="e-1",
            type=PlayEventType.interrupted,
            slot_id=slot.id,
            position_ms=4200,
            reason="rundown_changed",
            occurred_at=now,
        )
    )
    session.commit()
    html = sign_in(users[Role.duty_officer]).get(f"/console/endpoints/{endpoint.code}").text
    assert endpoint.name in html
    assert re.search(r'data-testid="status">在线<', html)
    assert re.search(r'data-testid="last-seen"[^>]*>1[2-9] 秒前<', html)
    assert '"address">10.8.0.7<' in html
    assert '"firmware">3.1.4<' in html
    assert "建立连接" in html
    assert html.count("森林防火宣传") == 3  # today's slot, tomorrow's dropped slot, the play
    assert "未排入：静默时段" in html
    assert "被打断" in html
    assert ">4.2<" in html
    assert 'data-testid="notify-refresh"' in html


def test_detail_respects_scope_and_unknown_codes(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    outside = _endpoint(users, session, index=-1)  # the village admin has only the first village
    client = sign_in(users[Role.village_admin])
    assert client.get(f"/console/endpoints/{outside.code}").status_code in (403, 404)
    assert client.get("/console/endpoints/NOPE0000").status_code == 404
    inside = _endpoint(users, session)
    page = client.get(f"/console/endpoints/{inside.code}")
    assert page.status_code == 200
    assert 'data-testid="notify-refresh"' not in page.text


def test_refresh_pushes_to_the_connected_device_and_is_audited(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    endpoint = _endpoint(users, session)
    _, secret, _ = issue_token(session, endpoint=endpoint, actor=CLI)
    session.commit()
    client = sign_in(users[Role.admin])
    with client.websocket_connect("/device/v1/ws", headers={"Authorization": f"Bearer {secret}"}) as ws:
        ws.receive_json()
        response = client.post(f"/console/endpoints/{endpoint.code}/refresh")
        assert response.status_code == 200
        assert "已通知终端" in response.text
        push = ws.receive_json()
    assert push["envelope"]["payload"]["type"] == "rundown_changed"
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "endpoint.notify_refresh")).one()
    assert entry.after == {"code": endpoint.code, "seq": push["envelope"]["payload"]["seq"]}


def test_refresh_is_for_admins_and_duty_officers(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    endpoint = _endpoint(users, session)
    response = sign_in(users[Role.propagandist]).post(f"/console/endpoints/{endpoint.code}/refresh")
    assert response.status_code == 403
    assert session.exec(select(AuditEntry).where(AuditEntry.action == "endpoint.notify_refresh")).all() == []


def test_list_shows_live_columns_and_polls_without_pushing_the_url(
    sign_in: SignIn, users: dict[Role, User], session: Session
) -> None:
    endpoint = _endpoint(users, session)
    presence.mark_online(session, endpoint_id=endpoint.id or 0, address="10.9.9.9", at=utc_now())
    presence.mark_offline(
        session, endpoint_id=endpoint.id or 0, last_frame_at=utc_now(), reason=Reason.closed
    )
    session.commit()
    client = sign_in(users[Role.admin])
    page = client.get("/console/endpoints", params={"q": endpoint.code}).text
    assert f'hx-get="/console/endpoints/presence?q={endpoint.code}"' in page
    assert f'href="/console/endpoints/{endpoint.code}"' in page
    polled = client.get(
        "/console/endpoints/presence", params={"q": endpoint.code}, headers={"HX-Request": "true"}
    )
    assert polled.status_code == 200
    assert "HX-Push-Url" not in polled.headers
    assert '"address">10.9.9.9<' in polled.text
    assert re.search(r"badge-offline\">离线<", polled.text)


@pytest.mark.browser
def test_list_turns_a_device_online_live(signed_in: SignedIn, console_site: ConsoleSite) -> None:
    """A real device connects to the running server; the open list shows it within one poll."""
    code = "HK0002"
    admin = {"Authorization": f"Bearer {access_token(console_site.users[Role.admin])}"}
    issued = httpx.post(f"{console_site.base_url}/api/v1/endpoints/{code}/tokens", headers=admin, timeout=10)
    assert issued.status_code == 201, issued.text
    page = signed_in(Role.duty_officer, f"/console/endpoints?q={code}")
    row = page.locator(f"#results tr[data-code='{code}']")
    expect(row.get_by_test_id("address")).to_have_text("—")

    url = console_site.base_url.replace("http", "ws") + "/device/v1/ws"
    with connect(url, additional_headers={"Authorization": f"Bearer {issued.json()['secret']}"}) as device:
        assert '"welcome"' in str(device.recv(timeout=5))
        expect(row.get_by_test_id("address")).to_have_text("127.0.0.1", timeout=8000)
    expect(row.locator(".badge")).to_have_text("在线")
    row.get_by_role("link", name=code).click()
    expect(page.get_by_test_id("connection")).to_contain_text("127.0.0.1")
    expect(page.get_by_test_id("presence-history")).to_contain_text("建立连接")
