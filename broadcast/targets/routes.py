"""HTTP routes of the targets feature."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
