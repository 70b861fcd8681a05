"""The device WebSocket: authentication and close codes, frames, pushes to targets, slow devices."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect

from broadcast.auth.audit import CLI
from broadcast.config import Settings
from broadcast.dispatch import gateway
from broadcast.dispatch.models import PresenceEvent
from broadcast.dispatch.push import notify_rundown_changed, publish_push
from broadcast.dispatch.runtime import runtime_of
from broadcast.regions.models import Endpoint, EndpointStatus
from broadcast.regions.tokens import issue_token
from tests import builders
from tests.dispatch.conftest import Device, make_device
from tests.dispatch.live import serve_in_thread, wait_until

WS = "/device/v1/ws"
MakeClient = Callable[..., TestClient]


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    """The subject is the socket layer; presence SQL is tested on both backends in test_presence."""
    return sqlite_engine


@pytest.fixture
def make_app(settings: Settings, engine: Engine) -> Callable[..., FastAPI]:
    from broadcast.app import create_app

    def make(**updates: Any) -> FastAPI:
        return create_app(settings.model_copy(update=updates), engine=engine, upgrade_db=False)

    return make


@pytest.fixture
def make_client(make_app: Callable[..., FastAPI]) -> Iterator[MakeClient]:
    clients: list[TestClient] = []

    def make(**updates: Any) -> TestClient:
        client = TestClient(make_app(**updates))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def close_code(ws: WebSocketTestSession) -> int:
    """Read frames until the server closes; the close code."""
    for _ in range(100):
        try:
            ws.receive_json()
        except WebSocketDisconnect as closed:
            return closed.code
    raise AssertionError("the server kept sending and never closed")


def events_of(session: Session, endpoint: Endpoint) -> list[tuple[str, str | None]]:
    session.expire_all()
    rows = session.exec(select(PresenceEvent).where(PresenceEvent.endpoint_id == endpoint.id)).all()
    return [(row.state.value, row.reason) for row in sorted(rows, key=lambda r: (r.at, r.id or 0))]


def test_header_auth_welcome_ping_pong_and_presence(
    client: TestClient, session: Session, devices: list[Device]
) -> None:
    device = devices[0]
    with client.websocket_connect(WS, headers=device.headers) as ws:
        welcome = ws.receive_json()
        assert welcome["type"] == "welcome"
        assert welcome["endpoint"] == device.endpoint.code
        assert welcome["ping_interval_s"] == 20
        assert welcome["server_time"].endswith("Z")
        assert welcome["last_seq"] == 0
        ws.send_json({"type": "ping"})
        assert ws.receive_json()["type"] == "pong"
        session.refresh(device.endpoint)
        assert device.endpoint.status == EndpointStatus.online
        assert device.endpoint.address == "testclient"
    wait_until(lambda: events_of(session, device.endpoint)[-1:] == [("offline", "closed")], what="offline")
    assert events_of(session, device.endpoint) == [("online", "connected"), ("offline", "closed")]
    session.refresh(device.endpoint)
    assert device.endpoint.status == EndpointStatus.offline


def test_hello_frame_auth(client: TestClient, devices: list[Device]) -> None:
    with client.websocket_connect(WS) as ws:
        ws.send_json({"type": "hello", "token": devices[1].token})
        assert ws.receive_json()["endpoint"] == devices[1].endpoint.code


@pytest.mark.parametrize(
    "first_frame",
    [
        {"type": "hello", "token": "bcd_not-a-real-token"},
        {"type": "hello"},
        {"type": "ping"},
        "not json at all",
    ],
)
def test_unknown_token_or_no_hello_closes_4401(client: TestClient, first_frame: object) -> None:
    with client.websocket_connect(WS) as ws:
        ws.send_text(first_frame if isinstance(first_frame, str) else json.dumps(first_frame))
        assert close_code(ws) == 4401


def test_unknown_header_token_closes_4401(client: TestClient) -> None:
    with client.websocket_connect(WS, headers={"Authorization": "Bearer bcd_forged"}) as ws:
        assert close_code(ws) == 4401


def test_silence_instead_of_hello_closes_4401(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway, "HELLO_TIMEOUT_S", 0.2)
    with client.websocket_connect(WS) as ws:
        assert close_code(ws) == 4401


def test_revoked_token_and_disabled_endpoint_close_4403(
    client: TestClient, session: Session, devices: list[Device]
) -> None:
    issue_token(session, endpoint=devices[0].endpoint, actor=CLI)  # rotation revokes the old one
    devices[1].endpoint.status = EndpointStatus.disabled
    session.add(devices[1].endpoint)
    session.commit()
    for device in devices:
        with client.websocket_connect(WS, headers=device.headers) as ws:
            assert close_code(ws) == 4403
    assert events_of(session, devices[1].endpoint) == []


def test_bad_frames_get_errors_then_4400(client: TestClient, devices: list[Device]) -> None:
    bad = ["{", "[1,2]", '{"type":"dance"}', '{"type":"ack","seq":-1}', '{"type":"status","volume":300}']
    with client.websocket_connect(WS, headers=devices[0].headers) as ws:
        ws.receive_json()
        ws.send_text(bad[0])
        error = ws.receive_json()
        assert (error["type"], error["code"]) == ("error", "bad_frame")
        assert "JSON" in error["message"]
        for text in bad[1:]:
            ws.send_text(text)
        assert close_code(ws) == 4400


def test_oversized_frame_closes_1009_and_others_unaffected(client: TestClient, devices: list[Device]) -> None:
    with (
        client.websocket_connect(WS, headers=devices[0].headers) as big,
        client.websocket_connect(WS, headers=devices[1].headers) as other,
    ):
        big.receive_json()
        other.receive_json()
        big.send_text(json.dumps({"type": "status", "firmware": "x" * (64 * 1024)}))
        assert close_code(big) == 1009
        other.send_json({"type": "ping"})
        assert other.receive_json()["type"] == "pong"


def test_duplicate_connection_replaces_the_first_with_4409(
    client: TestClient, session: Session, devices: list[Device]
) -> None:
    device = devices[0]
    with client.websocket_connect(WS, headers=device.headers) as first:
        first.receive_json()
        with client.websocket_connect(WS, headers=device.headers) as second:
            second.receive_json()
            assert close_code(first) == 4409
            second.send_json({"type": "ping"})
            assert second.receive_json()["type"] == "pong"
            assert events_of(session, device.endpoint) == [("online", "connected")]


def test_reconnect_flood_closes_4429(make_client: MakeClient, devices: list[Device]) -> None:
    client = make_client()
    for _ in range(10):
        with client.websocket_connect(WS, headers=devices[0].headers) as ws:
            assert ws.receive_json()["type"] == "welcome"
    with client.websocket_connect(WS, headers=devices[0].headers) as ws:
        assert close_code(ws) == 4429
    with client.websocket_connect(WS, headers=devices[1].headers) as ws:
        assert ws.receive_json()["type"] == "welcome"


def test_push_reaches_only_its_targets_and_acks_are_recorded(
    make_client: MakeClient, session: Session, settings: Settings, city: builders.City
) -> None:
    a, b, c = (make_device(session, endpoint) for endpoint in city.endpoints[:3])
    session.commit()
    client = make_client(device_offline_after_s=2)  # presence flushes every 0.5 s
    app = client.app
    assert isinstance(app, FastAPI)
    with (
        client.websocket_connect(WS, headers=a.headers) as ws_a,
        client.websocket_connect(WS, headers=b.headers) as ws_b,
        client.websocket_connect(WS, headers=c.headers) as ws_c,
    ):
        for ws in (ws_a, ws_b, ws_c):
            ws.receive_json()
        ids = [a.endpoint.id or 0, b.endpoint.id or 0]
        targeted = publish_push(
            app, session, targets=ids, payload_type="volume", body={"volume": 60}, settings=settings
        )
        session.commit()
        for ws in (ws_a, ws_b):
            push = ws.receive_json()
            assert push == {"type": "push", "envelope": targeted}
            assert push["envelope"]["payload"]["volume"] == 60
        publish_push(app, session, targets="all", payload_type="rundown_changed", body={}, settings=settings)
        session.commit()
        assert ws_c.receive_json()["envelope"]["payload"]["type"] == "rundown_changed"
        ws_a.send_json({"type": "ack", "seq": targeted["payload"]["seq"]})
        ws_a.send_json({"type": "status", "firmware": "2.1.0", "volume": 60, "playing": None})
        connection = runtime_of(app).registry.get(a.endpoint.id or 0)
        assert connection is not None
        wait_until(lambda: connection.acked_seq == targeted["payload"]["seq"], what="the ack")
        wait_until(lambda: _firmware(session, a.endpoint) == "2.1.0", what="firmware in the database")


def _firmware(session: Session, endpoint: Endpoint) -> str | None:
    session.expire_all()
    return session.get_one(Endpoint, endpoint.id).firmware


def test_rolled_back_push_is_never_sent(
    client: TestClient, session: Session, settings: Settings, devices: list[Device]
) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    with client.websocket_connect(WS, headers=devices[0].headers) as ws:
        ws.receive_json()
        publish_push(
            app, session, targets="all", payload_type="volume", body={"volume": 10}, settings=settings
        )
        session.rollback()
        sent = publish_push(
            app, session, targets="all", payload_type="volume", body={"volume": 20}, settings=settings
        )
        session.commit()
        assert ws.receive_json()["envelope"] == sent


def test_silent_device_goes_offline_after_the_timeout(
    make_client: MakeClient, session: Session, devices: list[Device]
) -> None:
    client = make_client(device_offline_after_s=1, device_ping_interval_s=60)
    with client.websocket_connect(WS, headers=devices[0].headers) as ws:
        ws.receive_json()
        assert close_code(ws) == 4408
    wait_until(
        lambda: events_of(session, devices[0].endpoint)[-1:] == [("offline", "timeout")], what="timeout"
    )


def test_server_pings_on_its_interval(make_client: MakeClient, devices: list[Device]) -> None:
    client = make_client(device_ping_interval_s=1)
    with client.websocket_connect(WS, headers=devices[0].headers) as ws:
        assert ws.receive_json()["ping_interval_s"] == 1
        ping = ws.receive_json()
        assert ping["type"] == "ping"
        assert ping["t"].endswith("Z")


def _big_push(n: int, targets: list[int]) -> dict[str, Any]:
    return {"targets": targets, "envelope": {"payload": {"type": "test", "seq": n, "pad": "x" * 60_000}}}


def _silent_device(url: str, token: str) -> socket.socket:
    """A raw client that completes the handshake and then never reads (small receive buffer)."""
    host, port = url.removeprefix("ws://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {WS} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    sock.sendall(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


async def _healthy_receives_all(url: str, app: FastAPI, stuck: Device, healthy: Device, count: int) -> float:
    runtime = runtime_of(app)
    targets = [stuck.endpoint.id or 0, healthy.endpoint.id or 0]
    async with connect(url + WS, additional_headers=healthy.headers, max_size=None) as fast:
        await fast.recv()
        started = time.monotonic()
        for n in range(count):
            runtime.send(_big_push(n, targets))
        for n in range(count):
            assert json.loads(await asyncio.wait_for(fast.recv(), 10))["envelope"]["payload"]["seq"] == n
        return time.monotonic() - started


def test_stuck_device_is_dropped_while_others_receive_quickly(
    make_app: Callable[..., FastAPI], session: Session, devices: list[Device]
) -> None:
    """A device that never reads overflows its own queue (4408); the other gets all 200 (12 MB) at once."""
    app = make_app(gateway_queue_size=32)
    stuck, healthy = devices
    with serve_in_thread(app) as url:
        silent = _silent_device(url, stuck.token)
        wait_until(lambda: runtime_of(app).registry.get(stuck.endpoint.id or 0), what="the silent device")
        elapsed = asyncio.run(_healthy_receives_all(url, app, stuck, healthy, 200))
        assert elapsed < 5
        wait_until(
            lambda: ("offline", "stuck") in events_of(session, stuck.endpoint),
            what="the stuck device dropped",
        )
        assert ("offline", "stuck") not in events_of(session, healthy.endpoint)
        silent.close()

        async def recovers() -> None:
            async with connect(url + WS, additional_headers=stuck.headers) as again:
                assert json.loads(await again.recv())["type"] == "welcome"

        asyncio.run(recovers())


def test_notify_rundown_changed_uses_this_process_gateway(
    client: TestClient, session: Session, settings: Settings, devices: list[Device]
) -> None:
    """The materializer's call: no app at hand, the push still reaches the device after commit."""
    assert notify_rundown_changed(session, endpoint_ids=[], settings=settings) is None
    with client.websocket_connect(WS, headers=devices[0].headers) as ws:
        ws.receive_json()
        ids = [devices[0].endpoint.id or 0, devices[0].endpoint.id or 0]
        envelope = notify_rundown_changed(session, endpoint_ids=ids, settings=settings)
        session.commit()
        assert envelope is not None
        assert ws.receive_json() == {"type": "push", "envelope": envelope}


def test_changing_an_endpoints_volume_pushes_it_to_the_speaker(
    make_client: MakeClient, session: Session, city: builders.City
) -> None:
    from broadcast.auth.models import Role
    from tests.conftest import bearer

    device = make_device(session, city.endpoints[0])
    admin = builders.make_user(session, role=Role.admin)
    session.commit()
    client = make_client()
    with client.websocket_connect(WS, headers=device.headers) as ws:
        ws.receive_json()
        code = device.endpoint.code
        response = client.patch(f"/api/v1/endpoints/{code}", json={"volume": 35}, headers=bearer(admin))
        assert response.status_code == 200, response.text
        push = ws.receive_json()
        assert push["envelope"]["payload"]["type"] == "volume"
        assert push["envelope"]["payload"]["volume"] == 35
