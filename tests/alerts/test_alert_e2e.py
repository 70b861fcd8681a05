"""Done when: a live alert sent to simulated speakers while a campaign plays.

Two ``broadcast serve`` processes share one PostgreSQL database and one Redis; eight simulated
speakers are split across them and are playing a long scheduled slot when the duty officer sends
a live level-III alert through the API (a second alert desk call approves nothing: level III needs
no second person). Proven here, end to end:

- preemption: every connected speaker interrupts its slot (``reason=alert``) and plays the alert;
- resumption: when the alert ends, each joins its slot again at the right position;
- delivery later: two speakers offline at send time get it on reconnecting, while it is valid;
- one play per speaker: the alert, re-published as it was, is refused as replayed; a copy with
  a forged level is refused as forged; the database holds exactly one start and one completion
  of the alert per speaker, and the board says "completed" for all eight.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from broadcast.alerts.models import AlertDelivery, DeliveryState
from broadcast.auth.models import Role
from broadcast.clock import utc_now
from broadcast.content.models import AudioBlob
from broadcast.db import make_engine, transaction
from broadcast.dispatch.models import OutboxMessage, PlayEvent
from broadcast.dispatch.push import RedisPublisher, notify_rundown_changed
from broadcast.playlists.models import Render
from broadcast.regions.models import Endpoint, EndpointStatus
from broadcast.scheduling.models import Campaign, RundownSlot
from broadcast.simulator.fleet import Fleet, FleetConfig
from tests import builders
from tests.simulator.city import Seeded, seed_city
from tests.simulator.servers import SECRET, running_servers, server_env, temp_database
from tests.simulator.waiting import until

pytestmark = pytest.mark.slow

REDIS_URL = os.environ.get("BROADCAST_TEST_ALERT_REDIS_URL", "redis://127.0.0.1:6379/6")
SPEAKERS = 8
OFFLINE = 2
SLOT_MS = 40_000


class Desk:
    """The duty officer's side: the real HTTP API of the first server, and the database."""

    def __init__(self, url: str, base: str) -> None:
        self.engine = make_engine(url)
        self.base = base
        self.publisher = RedisPublisher(REDIS_URL)
        with Session(self.engine) as session:
            builders.make_user(session, role=Role.duty_officer, username="zhiban-e2e")
            session.commit()
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "zhiban-e2e", "password": builders.PASSWORD}
        ).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def long_slots(self, seeded: Seeded, *, seconds_from_now: float) -> None:
        """Every speaker gets one 40-second slot (the program is made 40 s long for the test)."""
        starts = utc_now() + timedelta(seconds=seconds_from_now)
        with transaction(self.engine) as session:
            session.execute(update(AudioBlob).values(duration_ms=SLOT_MS))
            session.execute(update(Render).values(duration_ms=SLOT_MS))
            campaign = session.exec(select(Campaign)).one()
            for endpoint_id in seeded.endpoint_ids:
                session.add(
                    RundownSlot(
                        endpoint_id=endpoint_id,
                        campaign_id=campaign.id or 0,
                        revision_id=campaign.revision_id,
                        occurrence_at=starts,
                        starts_at=starts,
                        ends_at=starts + timedelta(milliseconds=SLOT_MS),
                    )
                )
            session.flush()
            settings_like = _settings(self.engine.url.render_as_string(hide_password=False))
            notify_rundown_changed(
                session, endpoint_ids=seeded.endpoint_ids, settings=settings_like, target=self.publisher
            )

    def send_alert(self) -> dict[str, Any]:
        body = {
            "request_key": "e2e-flood-0001",
            "title": "山洪黄色预警",
            "text": "山洪预警，沿河群众请注意安全。",
            "level": 3,
            "category": "flood",
            "drill": False,
            "selector": {"all": True},
            "repeat": 1,
            "valid_until": (utc_now() + timedelta(minutes=30)).isoformat(),
        }
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=60) as client:
            made = client.post("/api/v1/alerts", json=body)
            assert made.status_code == 201, made.text
            draft = made.json()
            assert draft["preview"]["total"] == SPEAKERS
            sent = client.post(f"/api/v1/alerts/{draft['id']}/send", json={"reach": SPEAKERS, "drill": False})
            assert sent.status_code == 200, sent.text
            assert sent.json()["status"] == "active"
            result: dict[str, Any] = sent.json()
            return result

    def alert_envelope(self) -> dict[str, Any]:
        with Session(self.engine) as session:
            row = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id).desc())).first()
            assert row is not None
            assert row.published_at is not None, "the relay published the alert"
            envelope: dict[str, Any] = row.message["envelope"]
            return envelope

    def raw(self, envelope: dict[str, Any]) -> None:
        self.publisher.send({"targets": "all", "envelope": envelope})

    def offline(self, endpoint_ids: list[int]) -> int:
        with Session(self.engine) as session:
            rows = session.exec(select(Endpoint.status).where(col(Endpoint.id).in_(endpoint_ids))).all()
        return sum(1 for status in rows if status != EndpointStatus.online)

    def alert_events(self, alert_id: int) -> Counter[tuple[int, str]]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(PlayEvent.endpoint_id, PlayEvent.type).where(PlayEvent.alert_id == alert_id)
            ).all()
        return Counter((endpoint_id, str(kind)) for endpoint_id, kind in rows)

    def slot_events(self) -> list[tuple[int, str, str | None, int | None]]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(PlayEvent.endpoint_id, PlayEvent.type, PlayEvent.reason, PlayEvent.position_ms)
                .where(col(PlayEvent.slot_id).is_not(None))
                .order_by(col(PlayEvent.occurred_at), col(PlayEvent.id))
            ).all()
        return [(e, str(t), r, p) for e, t, r, p in rows]

    def deliveries(self, alert_id: int) -> list[AlertDelivery]:
        with Session(self.engine) as session:
            return list(session.exec(select(AlertDelivery).where(AlertDelivery.alert_id == alert_id)).all())


def _settings(url: str) -> Any:
    from broadcast.config import Settings

    return Settings(database_url=url, redis_url=REDIS_URL, secret_key=SECRET)


async def _scenario(servers: list[str], seeded: Seeded, desk: Desk, cache: Path) -> tuple[Fleet, int]:
    config = FleetConfig(servers=servers, cache_dir=cache, seed=11, upload_interval_s=0.3, connect_rate=50)
    async with Fleet(seeded.tokens, config) as fleet:
        stats = fleet.stats
        assert await fleet.wait_connected(timeout=30) == SPEAKERS
        await until(lambda: stats.rundowns_accepted >= SPEAKERS, timeout=15, what="first rundowns")
        await asyncio.to_thread(desk.long_slots, seeded, seconds_from_now=4)
        await until(lambda: stats.started == SPEAKERS, timeout=20, what="every speaker playing its slot")

        away = fleet.endpoints[:OFFLINE]
        # Long enough to stay away while the alert is drafted and sent, even on a loaded machine.
        outages = [asyncio.create_task(e.outage(40)) for e in away]
        await until(lambda: stats.connected == SPEAKERS - OFFLINE, timeout=10, what="two speakers offline")
        away_ids = seeded.endpoint_ids[:OFFLINE]
        await until(lambda: desk.offline(away_ids) == OFFLINE, timeout=10, what="the server to see them go")
        alert = await asyncio.to_thread(desk.send_alert)

        here = fleet.endpoints[OFFLINE:]
        await until(
            lambda: stats.alerts_played >= SPEAKERS - OFFLINE,
            timeout=30,
            what="the connected speakers' alert",
        )
        assert all(e.player.playing_alert is None for e in here)
        envelope = await asyncio.to_thread(desk.alert_envelope)
        forged = copy.deepcopy(envelope)
        forged["payload"].update(level=1, seq=envelope["payload"]["seq"] + 1000)
        desk.raw(envelope)
        desk.raw(forged)
        refusals = stats.refusals
        await until(
            lambda: refusals["replayed"] >= SPEAKERS - OFFLINE and refusals["forged"] >= SPEAKERS - OFFLINE,
            timeout=15,
            what=f"the replayed and the forged alert refused, have {dict(refusals)}",
        )

        await asyncio.gather(*outages)
        await until(lambda: stats.alerts_played == SPEAKERS, timeout=90, what="the late speakers' alert")
        await until(lambda: stats.played == SPEAKERS, timeout=60, what="the slots resumed and finished")
        await until(lambda: fleet.uploadable() == 0, timeout=20, what="every event uploaded")
        return fleet, int(alert["id"])


def test_a_live_alert_preempts_resumes_reaches_latecomers_and_plays_once(tmp_path: Path) -> None:
    with temp_database() as url:
        data_dir = tmp_path / "data"
        seeded = seed_city(url, data_dir / "store", endpoints=SPEAKERS)
        env = server_env(database_url=url, redis_url=REDIS_URL, data_dir=data_dir)
        with running_servers(2, env=env, log_dir=tmp_path) as servers:
            desk = Desk(url, servers[0].url)
            try:
                fleet, alert_id = asyncio.run(
                    _scenario([s.url for s in servers], seeded, desk, tmp_path / "cache")
                )
                assert fleet.stats.alerts_interrupted == 0
                events = desk.alert_events(alert_id)
                assert events == Counter(
                    {(e, kind): 1 for e in seeded.endpoint_ids for kind in ("started", "completed")}
                )
                slots = desk.slot_events()
                for endpoint_id in seeded.endpoint_ids[OFFLINE:]:
                    mine = [
                        (kind, reason, position) for e, kind, reason, position in slots if e == endpoint_id
                    ]
                    kinds = [kind for kind, _, _ in mine]
                    assert kinds == ["started", "interrupted", "started", "completed"], mine
                    assert mine[1][1] == "alert"
                    assert (mine[2][2] or 0) > 0, "the slot resumes where the schedule stands, not at 0"
                states = {d.endpoint_id: d for d in desk.deliveries(alert_id)}
                assert {d.state for d in states.values()} == {DeliveryState.completed}
                late = [states[e] for e in seeded.endpoint_ids[:OFFLINE]]
                assert all(not d.online_at_send for d in late)
                assert all(d.delivered_at is not None and d.delivered_at > d.sent_at for d in late)
            finally:
                desk.engine.dispose()
