"""Device-facing routes under /device/v1 (see docs/device-protocol.md)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/device/v1")
