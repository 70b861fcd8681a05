"""Helpers for gateway tests: a real uvicorn server in a thread, waiting for conditions."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], object], *, timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def wait_for_health(base_url: str, *, timeout_s: float = 30.0) -> None:
    def up() -> bool:
        try:
            return httpx.get(f"{base_url}/api/v1/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, timeout_s=timeout_s, what=f"{base_url} to answer /api/v1/health")


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """The app on a free loopback port; yields ``ws://host:port`` and stops the server after."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_health(f"http://127.0.0.1:{port}")
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
