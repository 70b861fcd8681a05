"""An urgent alert to the whole city: 9,305 simulated speakers on two gateways, PostgreSQL and Redis.

Measured from the duty officer's request (the confirming ``POST /api/v1/alerts/{id}/send``, the
draft and its audio already made) to the first and to the last speaker verifying the alert push,
and to the last of them starting to play it (each fetches the program first; the fleet shares
one download, as speakers behind one cache would). The alert path writes 9,305 delivery rows and
the outbox in the request's transaction, then the relay publishes. Baseline, same run, same
fleet: a plain signed push (``volume``) appended to the stream directly, to its last receipt.

``BENCH_ENDPOINTS`` overrides the count; the rows say how many were connected.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

from broadcast.auth.models import Role
from broadcast.clock import utc_now
from broadcast.db import make_engine
from broadcast.dispatch.push import RedisPublisher
from broadcast.simulator.alerts import AlertPlay
from broadcast.simulator.endpoint import VirtualEndpoint
from broadcast.simulator.fleet import Fleet, FleetConfig, raise_fd_limit
from tests import builders
from tests.bench import Row
from tests.bench.bench_gateway import CONNECT_RATE, ENDPOINTS, REDIS_URL, _publish, _seed
from tests.simulator.servers import running_servers, server_env, temp_database

NAME = "alert"
CONNECT_WAIT_S = 150.0
RECEIPT_WAIT_S = 120.0
OFFICER = "zhiban-bench"


class Clocks:
    """perf_counter() when each speaker verified a push (by type) and started the alert."""

    def __init__(self) -> None:
        self.received: dict[str, list[float]] = {"alert": [], "volume": []}
        self.started: list[float] = []

    def on_push(self, _endpoint: VirtualEndpoint, payload: dict[str, Any]) -> None:
        if payload["type"] in self.received:
            self.received[payload["type"]].append(time.perf_counter())

    def on_start(self, _alert: AlertPlay) -> None:
        self.started.append(time.perf_counter())


async def _wait(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not check() and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)


def _officer(url: str) -> None:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            builders.make_user(session, role=Role.duty_officer, username=OFFICER)
            session.commit()
    finally:
        engine.dispose()


def _draft(base: str, reach: int) -> tuple[httpx.Client, int, int]:
    client = httpx.Client(base_url=base, timeout=120)
    login = client.post("/api/v1/auth/token", data={"username": OFFICER, "password": builders.PASSWORD})
    client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    body = {
        "request_key": "bench-alert-0001",
        "title": "山洪黄色预警",
        "text": "山洪预警，沿河群众请立即向高处转移。",
        "level": 3,
        "category": "flood",
        "drill": True,
        "selector": {"all": True},
        "repeat": 1,
        "valid_until": (utc_now() + timedelta(hours=1)).isoformat(),
    }
    draft = client.post("/api/v1/alerts", json=body)
    if draft.status_code != 201:
        raise RuntimeError(f"draft refused: {draft.status_code} {draft.text}")
    total = int(draft.json()["preview"]["total"])
    assert total >= reach
    return client, int(draft.json()["id"]), total


async def _city(urls: list[str], tokens: list[str], db: str, data: Path) -> dict[str, Any]:
    clocks = Clocks()
    config = FleetConfig(
        servers=urls, cache_dir=data / "cache", content=False, connect_rate=CONNECT_RATE, seed=3
    )
    async with Fleet(tokens, config, on_push=clocks.on_push) as fleet:
        for endpoint in fleet.endpoints:
            endpoint.player.on_alert_start.append(clocks.on_start)
        reached = await fleet.wait_connected(timeout=CONNECT_WAIT_S)
        await asyncio.sleep(3.0)
        started = time.perf_counter()
        await asyncio.to_thread(_publish, db, data, RedisPublisher(REDIS_URL), 61)
        await _wait(lambda: len(clocks.received["volume"]) >= reached, RECEIPT_WAIT_S)
        baseline = max(clocks.received["volume"], default=started) - started

        client, alert_id, total = await asyncio.to_thread(_draft, urls[0], reached)
        try:
            started = time.perf_counter()
            sent = await asyncio.to_thread(
                client.post, f"/api/v1/alerts/{alert_id}/send", json={"reach": total, "drill": True}
            )
            answered = time.perf_counter() - started
            if sent.status_code != 200:
                raise RuntimeError(f"send refused: {sent.status_code} {sent.text}")
        finally:
            client.close()
        await _wait(lambda: len(clocks.started) >= reached, RECEIPT_WAIT_S)
        receipts = sorted(t - started for t in clocks.received["alert"])
        playing = sorted(t - started for t in clocks.started)
    return {
        "reached": reached,
        "answered": answered,
        "first": receipts[0] if receipts else float("nan"),
        "last": receipts[-1] if receipts else float("nan"),
        "received": len(receipts),
        "playing": playing[-1] if playing else float("nan"),
        "played": len(playing),
        "baseline": baseline,
    }


def _rows(result: dict[str, Any]) -> list[Row]:
    n = result["reached"]
    short = "" if n == ENDPOINTS else f" ({n} of {ENDPOINTS} connected)"
    got = "" if result["received"] >= n else f"; only {result['received']} received"
    playing = "" if result["played"] >= n else f"; only {result['played']} playing"
    base = result["baseline"]
    return [
        Row(
            NAME,
            f"alert request -> its HTTP answer (9,305 deliveries + outbox committed){short}",
            result["answered"],
        ),
        Row(
            NAME,
            f"alert request -> first speaker has it (vs a plain push to the last){short}",
            result["first"],
            base,
        ),
        Row(
            NAME,
            f"alert request -> last of {n} has it (vs a plain push to the last){got}",
            result["last"],
            base,
        ),
        Row(
            NAME,
            f"alert request -> all {n} playing it (vs a plain push to the last){playing}",
            result["playing"],
            base,
        ),
    ]


def run() -> list[Row]:
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="bench-alert-") as tmp, temp_database() as db:
        data = Path(tmp) / "data"
        tokens = _seed(db)
        _officer(db)
        env = server_env(database_url=db, redis_url=REDIS_URL, data_dir=data)
        with running_servers(2, env=env, log_dir=Path(tmp)) as servers:
            result = asyncio.run(_city([s.url for s in servers], tokens, db, data))
    return _rows(result)
