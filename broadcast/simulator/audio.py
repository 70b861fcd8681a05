"""Program audio cached by sha256, shared by every speaker of the fleet (content-addressed)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path

import httpx


class AudioMismatch(Exception):
    """The bytes downloaded do not hash to the sha256 the signed rundown names."""


class AudioCache:
    """``<dir>/<sha256>.mp3``; a file is only ever visible complete and verified.

    Files are named by their content, so one copy serves every simulated speaker and concurrent
    requests for the same program share one download.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._downloads: dict[str, asyncio.Task[None]] = {}

    def path(self, sha256: str) -> Path:
        return self.directory / f"{sha256}.mp3"

    def has(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    async def ensure(
        self, http: httpx.AsyncClient, *, sha256: str, url: str, headers: dict[str, str]
    ) -> bool:
        """Make sure the program is cached. True when this call downloaded it, False when it was
        cached already or another speaker's download brought it."""
        if self.has(sha256):
            return False
        task = self._downloads.get(sha256)
        started = task is None
        if task is None:
            task = asyncio.ensure_future(self._download(http, sha256=sha256, url=url, headers=headers))
            self._downloads[sha256] = task
            task.add_done_callback(lambda _: self._downloads.pop(sha256, None))
        await asyncio.shield(task)
        return started

    async def _download(
        self, http: httpx.AsyncClient, *, sha256: str, url: str, headers: dict[str, str]
    ) -> None:
        digest = hashlib.sha256()
        part = self.directory / f".{sha256}.{uuid.uuid4().hex}.part"
        try:
            async with http.stream("GET", url, headers=headers) as response:
                response.raise_for_status()
                with part.open("wb") as out:
                    async for chunk in response.aiter_bytes(1 << 16):
                        digest.update(chunk)
                        out.write(chunk)
            if digest.hexdigest() != sha256:
                raise AudioMismatch(f"{url}: got sha256 {digest.hexdigest()}")
            os.replace(part, self.path(sha256))
        finally:
            part.unlink(missing_ok=True)
