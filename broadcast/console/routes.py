"""The server-rendered zh-CN console."""

from __future__ import annotations

from fastapi import FastAPI


def mount_console(app: FastAPI) -> None:
    """Adds the console's pages and static files to the app."""
