"""Done when: a burst of reports from the whole demo city, sent twice, is stored exactly once.

A real ``broadcast serve`` process on PostgreSQL and on SQLite; 9,305 speakers (the demo city,
tokens provisioned in bulk) each post one batch (started + completed of its own slot) at once
over hundreds of connections to two server processes, then post the same batches again, as
devices retrying after lost answers do. Every answer is 200 and says so; the database holds each
event once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
from broadcast.errors import BUSY_RETRY_AFTER_S
from broadcast.regions.models import Endpoint
from broadcast.scheduling.models import RundownSlot
from tests.dispatch.conftest import make_campaign, make_revision
from tests.simulator.servers import running_servers, server_env, temp_database

# About three minutes per database on two shared cores: the servers, not the client, set the pace.
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


def _seed(url: str) -> list[tuple[str, bytes]]:
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
        reports.append((tokens[endpoint.code], json.dumps({"events": events}).encode()))
    return reports


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough to post a report.

    A plain stream writer instead of an HTTP library: 9,305 requests from the test process would
    otherwise cost the client as much CPU as the servers, on the same two cores.
    """

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, token: str, body: bytes) -> Answer:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        head = (
            f"POST /device/v1/events HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        try:
            await writer.drain()
            lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        except (OSError, asyncio.IncompleteReadError):
            await self.close()
            raise
        status = int(lines[0].split()[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        answer = Answer(status, await reader.readexactly(int(headers.get("content-length", "0"))))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return answer

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _post(connection: Connection, token: str, body: bytes) -> tuple[Answer, int]:
    """Post a report as a device does (§7): resend after a network error, and after a 503 once
    its Retry-After has passed (the server stored nothing then); (answer, resends)."""
    for attempt in range(RESENDS + 1):
        try:
            answer = await connection.post(token, body)
        except (OSError, asyncio.IncompleteReadError):
            if attempt == RESENDS:
                raise
            await asyncio.sleep(0.5)
            continue
        if answer.status_code != 503 or attempt == RESENDS:
            return answer, attempt
        await asyncio.sleep(BUSY_RETRY_AFTER_S)
    raise AssertionError("unreachable")


async def _burst(urls: list[str], reports: list[tuple[str, bytes]]) -> tuple[float, list[tuple[Answer, int]]]:
    """Every report at once over ``CONNECTIONS`` connections spread over the servers; each
    connection posts the next report as soon as it has its answer."""
    answers: list[tuple[Answer, int] | None] = [None] * len(reports)
    pending = iter(enumerate(reports))
    connections = [Connection(urls[n % len(urls)]) for n in range(CONNECTIONS)]

    async def run(connection: Connection) -> None:
        for index, (token, body) in pending:
            answers[index] = await _post(connection, token, body)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(run(connection) for connection in connections))
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))
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
            f"{resends} resends after network errors or 503"
        )
