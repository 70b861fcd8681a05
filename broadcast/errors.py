"""Status-coded domain errors and the one handler that turns them into JSON responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError

log = logging.getLogger(__name__)


class BroadcastError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(BroadcastError):
    status_code = 404
    code = "not_found"


class Conflict(BroadcastError):
    status_code = 409
    code = "conflict"


class Invalid(BroadcastError):
    status_code = 422
    code = "invalid"


class Unauthorized(BroadcastError):
    status_code = 401
    code = "unauthorized"


class Forbidden(BroadcastError):
    status_code = 403
    code = "forbidden"


class TooManyRequests(BroadcastError):
    status_code = 429
    code = "too_many_requests"


class TooLarge(BroadcastError):
    status_code = 413
    code = "too_large"


class UnsupportedMedia(BroadcastError):
    status_code = 415
    code = "unsupported_media"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return body


def _format_location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in ("body",)) or "body"


BUSY_RETRY_AFTER_S = 2


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(BroadcastError)
    async def _domain(_: Request, exc: BroadcastError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": _format_location(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse(error_body("invalid", f"请求参数有误：{summary}", problems), 422)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # Services check uniqueness first; this catches the race between two writers.
        return JSONResponse(error_body("conflict", "与已有数据冲突，请刷新后重试"), 409)

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, exc: OperationalError) -> JSONResponse:
        # The database is busy or unreachable (SQLite's write lock under a burst, a lost
        # PostgreSQL connection): nothing was stored, and the same request will work later.
        log.warning("database busy on %s %s: %s", request.method, request.url.path, exc.orig)
        message = f"数据库繁忙，本次请求未保存任何内容：请 {BUSY_RETRY_AFTER_S} 秒后重试"
        return JSONResponse(
            error_body("busy", message), 503, headers={"Retry-After": str(BUSY_RETRY_AFTER_S)}
        )
