"""Starts and stops the device gateway's background tasks with the server."""

from __future__ import annotations

from fastapi import FastAPI


async def start_dispatch(app: FastAPI) -> None:
    """Start the broker reader and presence sweeper for this server process."""


async def stop_dispatch(app: FastAPI) -> None:
    """Stop them, closing device connections cleanly."""
