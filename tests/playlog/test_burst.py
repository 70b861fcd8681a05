"""Done when: a burst of reports from the whole demo city, sent twice, is stored exactly once.

A real ``broadcast serve`` process on PostgreSQL and on SQLite; 9,305 speakers (the demo city,
tokens provisioned in bulk) each post one batch (started + completed of its own slot) at once
over hundreds of connections to two server processes, then post the same batches again, as
devices retrying after lost answers do. Every answer is 200 and says so; the database holds each
event once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlmodel
from sqlalchemy import func, insert, select, text
from sqlmodel import Session, col

from broadcast import migrations
from broadcast.auth.audit import CLI
from broadcast.clock import utc_now
from broadcast.db import make_engine
from broadcast.demo.city import build_demo_city
from broadcast.dispatch.device_auth import provision_tokens
from broadcast.dispatch.envelope import format_time
from broadcast.dispatch.models import PlayEvent, PlayEventKey
from broadcast.regions.models import Endpoint
from broadcast.scheduling.models import RundownSlot
from tests.dispatch.conftest import make_campaign, make_revision
from tests.simulator.servers import running_servers, server_env, temp_database

# Four to five minutes per database when the two cores are shared with other work.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SPEAKERS = 9305
CONNECTIONS = 300
SERVERS = 2
RESENDS = 3


@contextmanager
def _database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "postgresql":
        with temp_database() as url:
            yield url
        return
    url = f"sqlite:///{tmp_path / 'burst.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    yield url


def _seed(url: str) -> list[tuple[str, dict[str, Any]]]:
    """The demo city, a token and a slot per speaker; each speaker's (token, batch)."""
    engine = make_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            build_demo_city(session)
            endpoints = list(session.exec(sqlmodel.select(Endpoint).order_by(col(Endpoint.id))).all())
            assert len(endpoints) == SPEAKERS
            tokens = dict(provision_tokens(session, endpoints=endpoints, scope="all", actor=CLI))
            campaign = make_campaign(session, make_revision(session))
            starts_at = utc_now() - timedelta(minutes=3)
            slot_rows = [
                {
                    "endpoint_id": e.id,
                    "campaign_id": campaign.id,
                    "revision_id": campaign.revision_id,
                    "occurrence_at": starts_at,
                    "starts_at": starts_at,
                    "ends_at": starts_at + timedelta(minutes=1),
                    "status": "planned",
                    "moved": False,
                    "updated_at": starts_at,
                }
                for e in endpoints
            ]
            session.execute(insert(RundownSlot), slot_rows)
            found = session.exec(sqlmodel.select(RundownSlot.endpoint_id, RundownSlot.id)).all()
            slots = {endpoint_id: slot_id or 0 for endpoint_id, slot_id in found}
            session.commit()
    finally:
        engine.dispose()
    reports = []
    for endpoint in endpoints:
        slot = slots[endpoint.id or 0]
        events = [
            {
                "id": str(uuid.uuid4()),
                "type": kind,
                "at": format_time(starts_at + timedelta(seconds=s)),
                "slot_id": slot,
            }
            for kind, s in (("started", 0), ("completed", 60))
        ]
        reports.append((tokens[endpoint.code], {"events": events}))
    return reports


async def _post(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> tuple[httpx.Response, int]:
    """Post a report as a device does: resend after a network error (§7); (answer, resends)."""
    for attempt in range(RESENDS + 1):
        try:
            answer = await client.post(
                "/device/v1/events", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            return answer, attempt
        except httpx.TransportError:
            if attempt == RESENDS:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def _burst(
    urls: list[str], reports: list[tuple[str, dict[str, Any]]]
) -> tuple[float, list[tuple[httpx.Response, int]]]:
    """Every report at once over ``CONNECTIONS`` connections spread over the servers.

    One task per connection pulls the next report: handing httpx thousands of requests at once
    makes its pool spend its time choosing among waiting requests instead of sending them. Idle
    connections are let go before the server's 5 s keep-alive would close them under a request.
    """
    limits = httpx.Limits(
        max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS, keepalive_expiry=2.0
    )
    answers: list[tuple[httpx.Response, int] | None] = [None] * len(reports)
    pending = iter(enumerate(reports))
    clients = [httpx.AsyncClient(base_url=url, limits=limits, timeout=120.0) for url in urls]
    try:

        async def connection(client: httpx.AsyncClient) -> None:
            for index, (token, body) in pending:
                answers[index] = await _post(client, token, body)

        started = time.perf_counter()
        await asyncio.gather(*(connection(clients[n % len(clients)]) for n in range(CONNECTIONS)))
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    return elapsed, [a for a in answers if a is not None]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_city_wide_burst_sent_twice_is_stored_exactly_once(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _database(backend, tmp_path) as url:
        reports = _seed(url)
        env = server_env(database_url=url, redis_url=None, data_dir=tmp_path / "data")
        with running_servers(SERVERS, env=env, log_dir=tmp_path) as servers:
            urls = [server.url for server in servers]
            first_s, first = asyncio.run(_burst(urls, reports))
            again_s, again = asyncio.run(_burst(urls, reports))
        resends = sum(n for _, n in first) + sum(n for _, n in again)
        for answers, expected in ((first, (2, 0)), (again, (0, 2))):
            problems = [a for a, _ in answers if a.status_code != 200]
            assert not problems, problems[0].text
            assert len(answers) == SPEAKERS
            bodies = [(a.json(), n) for a, n in answers]
            assert all(not b["rejected"] and b["accepted"] + b["duplicates"] == 2 for b, _ in bodies)
            # A resent report may have been stored by the attempt whose answer was lost.
            assert {(b["accepted"], b["duplicates"]) for b, n in bodies if n == 0} == {expected}
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                stored = connection.execute(select(func.count()).select_from(PlayEvent)).scalar_one()
                distinct = connection.execute(
                    text("SELECT count(*) FROM (SELECT DISTINCT endpoint_id, event_id FROM play_events) AS d")
                ).scalar_one()
                keys = connection.execute(select(func.count()).select_from(PlayEventKey)).scalar_one()
                villages = connection.execute(
                    select(func.count()).select_from(PlayEvent).where(PlayEvent.village_id.is_(None))  # type: ignore[union-attr]
                ).scalar_one()
        finally:
            engine.dispose()
    assert stored == distinct == keys == 2 * SPEAKERS
    assert villages == 0
    with capsys.disabled():
        print(
            f"\n[{backend}] {SPEAKERS} reports ({2 * SPEAKERS} events) over {CONNECTIONS} connections: "
            f"first burst {first_s:.1f} s ({SPEAKERS / first_s:.0f} reports/s), "
            f"the retry {again_s:.1f} s ({SPEAKERS / again_s:.0f} reports/s), {SERVERS} server processes, "
            f"{resends} resends after network errors"
        )
