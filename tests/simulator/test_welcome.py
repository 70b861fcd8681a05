"""A speaker fetches the alerts list after a welcome only when the welcome counts some (§4.5)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from broadcast.simulator.audio import AudioCache
from broadcast.simulator.endpoint import Options, Server, VirtualEndpoint
from broadcast.simulator.keys import KeySource
from broadcast.simulator.stats import FleetStats
from broadcast.simulator.timing import VirtualClock


@pytest.mark.parametrize(
    ("welcome", "fetches"),
    [
        ({"alerts": 0}, False),
        ({"alerts": 2}, True),
        ({}, True),  # an older gateway does not say: fetch
        ({"alerts": "0"}, True),  # not a count: fetch rather than miss an alert
    ],
)
def test_the_welcome_decides_whether_to_fetch_alerts(
    tmp_path: Path, welcome: dict[str, Any], fetches: bool
) -> None:
    async def run() -> bool:
        async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as http:
            speaker = VirtualEndpoint(
                "bcd_test",
                server=Server(http=http, ws_url="ws://127.0.0.1:9/device/v1/ws"),
                keys=KeySource(http),
                clock=VirtualClock(speed=1.0),
                cache=AudioCache(tmp_path),
                stats=FleetStats(),
                options=Options(content=False),
                rng=random.Random(1),
            )
            await speaker._on_welcome({"type": "welcome", "endpoint": "EP000001", **welcome})
            return speaker._refetch_alerts.is_set()

    assert asyncio.run(run()) is fetches
