"""A connect storm: handshakes admitted in batches, 1013 beyond the queue, offline marks batched."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from broadcast.auth.audit import CLI
from broadcast.auth.models import DeviceToken
from broadcast.auth.security import hash_device_token
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.dispatch.device_auth import TokenRefusal, provision_tokens
from broadcast.dispatch.models import PresenceEvent
from broadcast.dispatch.push import publish_push
from broadcast.dispatch.runtime import Handshake, Identity, admit, runtime_of
from broadcast.regions.models import Endpoint, EndpointStatus
from broadcast.regions.tokens import issue_token
from tests import builders
from tests.dispatch.conftest import make_device
from tests.dispatch.live import serve_in_thread, wait_until

WS = "/device/v1/ws"


def _handshake(token: str, address: str = "10.0.0.1") -> Handshake:
    return Handshake(hash_device_token(token), address, utc_now())


def _events(session: Session, endpoint: Endpoint) -> list[tuple[str, str | None]]:
    session.expire_all()
    query = select(PresenceEvent).where(PresenceEvent.endpoint_id == endpoint.id)
    rows = session.exec(query.order_by(col(PresenceEvent.at), col(PresenceEvent.id))).all()
    return [(row.state.value, row.reason) for row in rows]


def test_one_batch_gives_each_handshake_its_own_verdict(
    session: Session, settings: Settings, city: builders.City
) -> None:
    ok, faulty, revoked, disabled = (make_device(session, e) for e in city.endpoints[:4])
    issue_token(session, endpoint=revoked.endpoint, actor=CLI)  # rotation revokes revoked.token
    faulty.endpoint.status = EndpointStatus.fault
    disabled.endpoint.status = EndpointStatus.disabled
    session.add_all([faulty.endpoint, disabled.endpoint])
    publish_push(None, session, targets="all", payload_type="volume", body={"volume": 50}, settings=settings)
    session.commit()
    tokens = [ok.token, "bcd_unknown", revoked.token, faulty.token, disabled.token, ok.token]

    outcomes = admit(session, [_handshake(token) for token in tokens])
    session.commit()

    ok_id, faulty_id = ok.endpoint.id or 0, faulty.endpoint.id or 0
    assert outcomes == [
        Identity(ok_id, ok.endpoint.code, 1, 0),
        TokenRefusal(4401, "unauthorized"),
        TokenRefusal(4403, "token_revoked"),
        Identity(faulty_id, faulty.endpoint.code, 1, 0),
        TokenRefusal(4403, "endpoint_disabled"),
        Identity(ok_id, ok.endpoint.code, 1, 0),
    ]
    for device, status in [(ok, EndpointStatus.online), (faulty, EndpointStatus.fault)]:
        session.refresh(device.endpoint)
        assert (device.endpoint.status, device.endpoint.address) == (status, "10.0.0.1")
        assert _events(session, device.endpoint) == [("online", "connected")]  # the duplicate: no event
    assert _events(session, disabled.endpoint) == []
    assert _events(session, revoked.endpoint) == []


def test_token_last_use_is_refreshed_only_when_stale(session: Session, city: builders.City) -> None:
    fresh, stale = (make_device(session, e) for e in city.endpoints[:2])
    now = utc_now()
    rows = {}
    for device, last_used in [(fresh, now - timedelta(minutes=1)), (stale, now - timedelta(minutes=6))]:
        row = session.exec(
            select(DeviceToken).where(DeviceToken.token_hash == hash_device_token(device.token))
        ).one()
        row.last_used_at = last_used
        session.add(row)
        rows[device.token] = (row.id, last_used)
    session.commit()

    admit(session, [_handshake(fresh.token), _handshake(stale.token)])
    session.commit()

    session.expire_all()
    assert session.get_one(DeviceToken, rows[fresh.token][0]).last_used_at == rows[fresh.token][1]
    refreshed = session.get_one(DeviceToken, rows[stale.token][0]).last_used_at
    assert refreshed is not None
    assert refreshed > now - timedelta(seconds=5)


def _fleet(session: Session, count: int) -> list[tuple[Endpoint, str]]:
    village = builders.make_village(session, town=builders.make_town(session))
    endpoints = [
        builders.make_endpoint(session, village=village, status=EndpointStatus.offline) for _ in range(count)
    ]
    secrets = dict(provision_tokens(session, endpoints=endpoints, scope="test", actor=CLI))
    session.commit()
    return [(endpoint, secrets[endpoint.code]) for endpoint in endpoints]


def _count_batches(app: FastAPI, which: str) -> list[int]:
    """Record the size of every batch the runtime's ``which`` batcher hands to the database."""
    batcher = getattr(runtime_of(app), which)
    work: Callable[[list[Any]], Awaitable[list[Any]]] = batcher._work
    sizes: list[int] = []

    async def counted(items: list[Any]) -> list[Any]:
        sizes.append(len(items))
        return await work(items)

    batcher._work = counted
    return sizes


async def _connect(url: str, token: str) -> tuple[str, int | None]:
    """'welcome' or 'closed' and the close code."""
    try:
        async with connect(url + WS, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
            return frame["type"], None
    except ConnectionClosed as closed:
        return "closed", closed.rcvd.code if closed.rcvd else None


def test_a_storm_of_mixed_handshakes_is_admitted_in_few_batches(
    app: FastAPI, session: Session, city: builders.City
) -> None:
    good = _fleet(session, 120)
    revoked, disabled = (make_device(session, e) for e in city.endpoints[:2])
    issue_token(session, endpoint=revoked.endpoint, actor=CLI)
    disabled.endpoint.status = EndpointStatus.disabled
    session.add(disabled.endpoint)
    session.commit()
    tokens = [token for _, token in good] + ["bcd_nobody", revoked.token, disabled.token]
    with serve_in_thread(app) as url:
        sizes = _count_batches(app, "admission")

        async def storm() -> list[tuple[str, int | None]]:
            return await asyncio.gather(*(_connect(url, token) for token in tokens))

        results = asyncio.run(storm())
    assert results[:-3] == [("welcome", None)] * len(good)
    assert results[-3:] == [("closed", 4401), ("closed", 4403), ("closed", 4403)]
    assert sum(sizes) == len(tokens)
    assert len(sizes) < len(tokens) / 4, sizes  # handshakes waiting together share a transaction


def test_handshakes_beyond_the_queue_are_told_to_come_back_1013(
    client: TestClient, devices: list[Any], city: builders.City, session: Session
) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    third = make_device(session, city.endpoints[2])
    session.commit()
    runtime = runtime_of(app)
    runtime.admission.limit = 2
    gate = threading.Event()
    work = runtime.admission._work

    async def held(items: list[Handshake]) -> list[Any]:
        await anyio.to_thread.run_sync(gate.wait)
        return await work(items)

    runtime.admission._work = held
    with (
        client.websocket_connect(WS, headers=devices[0].headers) as first,
        client.websocket_connect(WS, headers=devices[1].headers) as second,
    ):
        wait_until(lambda: len(runtime.admission) == 2, what="two handshakes waiting")
        with client.websocket_connect(WS, headers=third.headers) as turned_away:
            with pytest.raises(WebSocketDisconnect) as closed:
                turned_away.receive_json()
            assert closed.value.code == 1013
        gate.set()
        assert first.receive_json()["type"] == "welcome"
        assert second.receive_json()["type"] == "welcome"


def test_stopping_with_many_connections_marks_them_offline_in_a_few_transactions(
    app: FastAPI, engine: Engine, session: Session
) -> None:
    fleet = _fleet(session, 300)
    ids = [endpoint.id for endpoint, _ in fleet]
    codes: list[int | None] = []

    async def hold_all(url: str, connected: threading.Event, stop: threading.Event) -> None:
        async def hold(token: str) -> None:
            async with connect(url + WS, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                await ws.recv()
                held.append(ws)
                if len(held) == len(fleet):
                    connected.set()
                try:
                    await ws.wait_closed()
                finally:
                    codes.append(ws.close_code)

        held: list[Any] = []
        await asyncio.gather(*(hold(token) for _, token in fleet))
        stop.set()

    connected, done = threading.Event(), threading.Event()
    with serve_in_thread(app) as url:
        sizes = _count_batches(app, "departures")
        holder = threading.Thread(target=asyncio.run, args=(hold_all(url, connected, done),), daemon=True)
        holder.start()
        assert connected.wait(60), "not all 300 connected"
        with Session(engine) as session:
            online = select(func.count()).where(col(Endpoint.id).in_(ids), Endpoint.status == "online")
            assert session.exec(online).one() == len(fleet)
        stopping = time.monotonic()
    stopped_s = time.monotonic() - stopping
    assert done.wait(20)
    assert sorted(set(codes), key=str) in ([1001], [1012], [1001, 1012])
    assert stopped_s < 10
    assert sum(sizes) == len(fleet)
    assert len(sizes) <= 10, sizes  # not one transaction per connection
    with Session(engine) as session:
        offline = select(func.count()).where(col(Endpoint.id).in_(ids), Endpoint.status == "offline")
        assert session.exec(offline).one() == len(fleet)
        events = select(func.count()).where(
            col(PresenceEvent.endpoint_id).in_(ids), PresenceEvent.state == "offline"
        )
        assert session.exec(events).one() == len(fleet)
