"""HTTP routes of the content feature."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
