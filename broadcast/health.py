"""``GET /api/v1/health``: is the server up, and which database and broker is it using."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from broadcast.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(request: Request, session: SessionDep) -> dict[str, Any]:
    session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return {
        "status": "ok",
        "database": request.app.state.database,
        "broker": request.app.state.broker,
        "version": request.app.version,
    }
