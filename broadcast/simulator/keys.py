"""The platform's published keys, fetched once for the fleet and refreshed on an unknown kid."""

from __future__ import annotations

import asyncio
import time

import httpx

from broadcast.simulator.verify import KeyRing

# An unknown kid triggers at most one refresh this often: a flood of forged kids must not
# become a flood of requests.
MIN_REFRESH_S = 30.0


class KeySource:
    def __init__(self, http: httpx.AsyncClient, *, url: str = "/device/v1/keys") -> None:
        self._http = http
        self._url = url
        self.ring = KeyRing()
        self._lock = asyncio.Lock()
        self._fetched_at: float | None = None

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch ``GET /device/v1/keys``; False when skipped because it ran too recently."""
        async with self._lock:
            recent = self._fetched_at is not None and time.monotonic() - self._fetched_at < MIN_REFRESH_S
            if recent and not force:
                return False
            response = await self._http.get(self._url)
            response.raise_for_status()
            fresh = KeyRing.from_document(response.json())
            self.ring = fresh  # a key no longer listed is no longer trusted
            self._fetched_at = time.monotonic()
            return True
