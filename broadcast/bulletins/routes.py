"""HTTP routes of the bulletins feature."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
