"""Done when: the simulator against a real server, Redis and two gateway processes.

Two ``broadcast serve`` processes share one PostgreSQL database and one Redis; 20 simulated
speakers are split across them. Pushes published once reach all 20; forged, replayed and
expired ones are refused by all 20; a new slot announced by a push is fetched, played on the
speakers' own clocks (four of them offline at the time) and every play reaches the database
exactly once.
"""

from __future__ import annotations

import asyncio
import copy
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.db import make_engine, transaction
from broadcast.dispatch.models import PlayEvent
from broadcast.dispatch.push import RedisPublisher, notify_rundown_changed, publish_push
from broadcast.dispatch.signing import sign
from broadcast.scheduling.models import Campaign, RundownSlot
from broadcast.simulator.fleet import Fleet, FleetConfig
from tests.simulator.city import Seeded, seed_city
from tests.simulator.servers import SECRET, running_servers, server_env, temp_database
from tests.simulator.waiting import until

pytestmark = pytest.mark.slow

# A Redis database of its own: other tests' pushes on the shared stream never reach this fleet.
REDIS_URL = os.environ.get("BROADCAST_TEST_SIM_REDIS_URL", "redis://127.0.0.1:6379/7")
SPEAKERS = 20


class Platform:
    """What an operator's tools do in the test process: sign and publish through Redis."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.settings = Settings(database_url=url, redis_url=REDIS_URL, secret_key=SECRET, data_dir=data_dir)
        self.engine = make_engine(url)
        self.publisher = RedisPublisher(REDIS_URL)

    def push(
        self, payload_type: str, body: dict[str, Any], targets: list[int] | str = "all"
    ) -> dict[str, Any]:
        with transaction(self.engine) as session:
            return publish_push(
                self.publisher,
                session,
                targets=targets,
                payload_type=payload_type,
                body=body,
                settings=self.settings,
            )

    def raw(self, envelope: dict[str, Any]) -> None:
        """Put any envelope on the stream, as an attacker with access to the network path could."""
        self.publisher.send({"targets": "all", "envelope": envelope})

    def expired_volume(self) -> dict[str, Any]:
        with transaction(self.engine) as session:
            past = utc_now() - timedelta(seconds=self.settings.signature_ttl_s + 60)
            return sign(session, {"type": "volume", "volume": 5}, settings=self.settings, now=past)

    def add_slots(self, endpoint_ids: list[int], *, seconds_from_now: float) -> None:
        starts = utc_now() + timedelta(seconds=seconds_from_now)
        with transaction(self.engine) as session:
            campaign = session.exec(select(Campaign)).one()
            for endpoint_id in endpoint_ids:
                session.add(
                    RundownSlot(
                        endpoint_id=endpoint_id,
                        campaign_id=campaign.id or 0,
                        revision_id=campaign.revision_id,
                        occurrence_at=starts,
                        starts_at=starts,
                        ends_at=starts + timedelta(seconds=5),
                    )
                )
            session.flush()
            notify_rundown_changed(
                session, endpoint_ids=endpoint_ids, settings=self.settings, target=self.publisher
            )


async def _signed_pushes(fleet: Fleet, platform: Platform) -> None:
    volume = await asyncio.to_thread(platform.push, "volume", {"volume": 42})
    await until(lambda: all(e.volume == 42 for e in fleet.endpoints), timeout=15, what="the volume push")
    assert {e.windows["push"].highest for e in fleet.endpoints} == {volume["payload"]["seq"]}

    forged = copy.deepcopy(volume)
    forged["payload"].update(volume=0, seq=volume["payload"]["seq"] + 1000)
    platform.raw(forged)
    platform.raw(volume)
    platform.raw(await asyncio.to_thread(platform.expired_volume))
    refusals = fleet.stats.refusals
    await until(
        lambda: (refusals["forged"], refusals["replayed"], refusals["expired"]) == (SPEAKERS,) * 3,
        timeout=15,
        what=f"20 refusals of each kind, have {dict(refusals)}",
    )
    assert all(e.volume == 42 for e in fleet.endpoints)
    assert fleet.stats.pushes_accepted == SPEAKERS


async def _scheduled_play(fleet: Fleet, platform: Platform, seeded: Seeded) -> None:
    await asyncio.to_thread(platform.add_slots, seeded.endpoint_ids, seconds_from_now=6)
    stats = fleet.stats
    await until(lambda: stats.rundowns_accepted >= 2 * SPEAKERS, timeout=10, what="the rundown refetch")
    await until(lambda: stats.audio_downloaded + stats.audio_cache_hits >= SPEAKERS, timeout=10, what="audio")
    assert stats.audio_downloaded == 1  # content-addressed: one download serves the fleet
    offline = fleet.endpoints[:4]
    outages = [asyncio.create_task(e.outage(10)) for e in offline]
    await until(lambda: stats.played == SPEAKERS, timeout=20, what="every speaker to play its slot")
    assert all(len(e.outbox) == 2 for e in offline), "plays made offline wait in the outbox"
    await asyncio.gather(*outages)
    await until(lambda: fleet.uploadable() == 0, timeout=20, what="the buffered events to upload")


async def _scenario(servers: list[str], seeded: Seeded, platform: Platform, cache: Path) -> Fleet:
    config = FleetConfig(servers=servers, cache_dir=cache, seed=7, upload_interval_s=0.3, connect_rate=50)
    async with Fleet(seeded.tokens, config) as fleet:
        assert await fleet.wait_connected(timeout=30) == SPEAKERS
        await until(lambda: fleet.stats.rundowns_accepted >= SPEAKERS, timeout=15, what="first rundowns")
        await _signed_pushes(fleet, platform)
        await _scheduled_play(fleet, platform, seeded)
    return fleet


def test_simulated_city_across_two_gateways(tmp_path: Path) -> None:
    with temp_database() as url:
        data_dir = tmp_path / "data"
        seeded = seed_city(url, data_dir / "store", endpoints=SPEAKERS)
        platform = Platform(url, data_dir)
        env = server_env(database_url=url, redis_url=REDIS_URL, data_dir=data_dir)
        try:
            with running_servers(2, env=env, log_dir=tmp_path) as servers:
                fleet = asyncio.run(_scenario([s.url for s in servers], seeded, platform, tmp_path / "cache"))
            stats = fleet.stats
            assert (stats.events_accepted, stats.events_duplicates, stats.events_rejected) == (
                2 * SPEAKERS,
                0,
                0,
            )
            assert stats.auth_failures == 0
            with Session(platform.engine) as session:
                rows = session.exec(
                    select(PlayEvent.endpoint_id, PlayEvent.type, func.count()).group_by(
                        col(PlayEvent.endpoint_id), col(PlayEvent.type)
                    )
                ).all()
            assert sorted((e, t.value, n) for e, t, n in rows) == sorted(
                (e, kind, 1) for e in seeded.endpoint_ids for kind in ("started", "completed")
            )
        finally:
            platform.engine.dispose()
