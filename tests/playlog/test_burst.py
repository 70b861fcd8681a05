"""Done when: a burst of 9,305 reports within one second, sent twice, is stored exactly once.

Real ``broadcast serve`` processes on PostgreSQL and on SQLite; 9,305 speakers (the demo city,
tokens provisioned in bulk) each post one batch (started + completed of its own slot). All the
reports leave the client within one second (pipelined over hundreds of connections to two server
processes), then the same batches are sent again, as devices retrying after lost answers do.
Every answer is 200 and says so; the database holds each event once.
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
    """One keep-alive HTTP/1.1 connection speaking just enough to post reports.

    A plain stream writer instead of an HTTP library: 9,305 requests from the test process would
    otherwise cost the client as much CPU as the servers, on the same two cores. Requests can be
    pipelined (written back to back, answered in order), which is how the whole city's reports
    leave the client within one second.
    """

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def request(self, token: str, body: bytes) -> bytes:
        head = (
            f"POST /device/v1/events HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        return self._streams

    def write(self, data: bytes) -> None:
        assert self._streams is not None, "open the connection first"
        self._streams[1].write(data)

    async def flushed(self) -> None:
        """Wait until every byte written has been handed to the operating system."""
        assert self._streams is not None, "open the connection first"
        transport = self._streams[1].transport
        while transport.get_write_buffer_size() and not transport.is_closing():
            await asyncio.sleep(0.002)

    async def answer(self) -> Answer:
        """The next answer on this connection (a network error closes it and is raised)."""
        reader, _ = await self.open()
        try:
            lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            answer = Answer(status, await reader.readexactly(int(headers.get("content-length", "0"))))
        except (OSError, asyncio.IncompleteReadError):
            await self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return answer

    async def post(self, token: str, body: bytes) -> Answer:
        _, writer = await self.open()
        writer.write(self.request(token, body))
        try:
            await writer.drain()
        except OSError:
            await self.close()
            raise
        return await self.answer()

    @property
    def closed(self) -> bool:
        return self._streams is None

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _post(
    connection: Connection, token: str, body: bytes, tries: int = RESENDS + 1
) -> tuple[Answer, int]:
    """Post a report as a device does (§7): resend after a network error, and after a 503 once
    its Retry-After has passed (the server stored nothing then); (answer, resends)."""
    for attempt in range(tries):
        try:
            answer = await connection.post(token, body)
        except (OSError, asyncio.IncompleteReadError):
            if attempt == tries - 1:
                raise
            await asyncio.sleep(0.5)
            continue
        if answer.status_code != 503 or attempt == tries - 1:
            return answer, attempt
        await asyncio.sleep(BUSY_RETRY_AFTER_S)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Burst:
    sent_s: float  # from the first byte written to the last one handed to the operating system
    answered_s: float  # from the first byte written to the last answer
    answers: list[tuple[Answer, int]]  # per report: the final answer and how many resends it took


async def _burst(urls: list[str], reports: list[tuple[str, bytes]]) -> Burst:
    """Every report at once: the connections are opened first, then each writes its share of the
    reports back to back (HTTP/1.1 pipelining) without waiting for an answer. A report answered
    503, or left unanswered by a connection that broke, is resent as a device would."""
    connections = [Connection(urls[n % len(urls)]) for n in range(CONNECTIONS)]
    shares = [list(range(n, len(reports), CONNECTIONS)) for n in range(CONNECTIONS)]
    answers: list[tuple[Answer, int] | None] = [None] * len(reports)

    async def collect(connection: Connection, share: list[int]) -> None:
        busy: list[int] = []
        for position, index in enumerate(share):
            try:
                answer = await connection.answer()
            except (OSError, asyncio.IncompleteReadError):
                busy.extend(share[position:])
                break
            if answer.status_code == 503:
                busy.append(index)
            else:
                answers[index] = (answer, 0)
            if connection.closed:
                busy.extend(share[position + 1 :])
                break
        if busy:
            await asyncio.sleep(
                BUSY_RETRY_AFTER_S
            )  # the Retry-After of a 503, or a broken connection's pause
        for index in busy:
            answer, resends = await _post(connection, *reports[index], tries=RESENDS)
            answers[index] = (answer, resends + 1)

    await asyncio.gather(*(connection.open() for connection in connections))
    try:
        payloads = [
            b"".join(connection.request(*reports[index]) for index in share)
            for connection, share in zip(connections, shares, strict=True)
        ]
        started = time.perf_counter()
        for connection, payload in zip(connections, payloads, strict=True):
            connection.write(payload)
        await asyncio.gather(*(connection.flushed() for connection in connections))
        sent_s = time.perf_counter() - started
        await asyncio.gather(*(collect(c, share) for c, share in zip(connections, shares, strict=True)))
        answered_s = time.perf_counter() - started
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))
    return Burst(sent_s, answered_s, [a for a in answers if a is not None])


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_city_wide_burst_sent_twice_is_stored_exactly_once(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _database(backend, tmp_path) as url:
        reports = _seed(url)
        env = server_env(database_url=url, redis_url=None, data_dir=tmp_path / "data")
        with running_servers(SERVERS, env=env, log_dir=tmp_path) as servers:
            urls = [server.url for server in servers]
            first = asyncio.run(_burst(urls, reports))
            again = asyncio.run(_burst(urls, reports))
        for burst, expected in ((first, (2, 0)), (again, (0, 2))):
            # The premise: the whole city's reports left the client within one second.
            assert burst.sent_s < 1.0, f"the client took {burst.sent_s:.2f} s to send the burst"
            problems = [a for a, _ in burst.answers if a.status_code != 200]
            assert not problems, problems[0].text
            assert len(burst.answers) == SPEAKERS
            bodies = [(a.json(), n) for a, n in burst.answers]
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
    resends = sum(n for burst in (first, again) for _, n in burst.answers)
    with capsys.disabled():
        print(
            f"\n[{backend}] {SPEAKERS} reports ({2 * SPEAKERS} events) pipelined over {CONNECTIONS} "
            f"connections to {SERVERS} server processes: sent in {first.sent_s * 1000:.0f} ms, all answered "
            f"in {first.answered_s:.1f} s ({SPEAKERS / first.answered_s:.0f} reports/s); sent again in "
            f"{again.sent_s * 1000:.0f} ms, answered in {again.answered_s:.1f} s; "
            f"{resends} resends after network errors or 503"
        )
