"""Device-facing routes under /device/v1 (see docs/device-protocol.md).

The endpoint always comes from the device token (``DeviceDep``); no route takes an endpoint
from the path, the query or the body.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import Engine

from broadcast.alerts.service import device_alerts
from broadcast.clock import utc_now
from broadcast.content.audio import HOUSE_MEDIA_TYPE
from broadcast.content.service import etag_matches
from broadcast.content.store import get_store
from broadcast.db import transaction
from broadcast.deps import SessionDep, SettingsDep, get_engine, reject_unknown_query
from broadcast.dispatch import keys
from broadcast.dispatch.device_auth import DeviceDep
from broadcast.dispatch.device_schemas import (
    AlertsDocument,
    EventBatch,
    EventsResult,
    PublicKeyOut,
    PublishedKeys,
)
from broadcast.dispatch.events import ingest_events, limit_body
from broadcast.dispatch.rundown_doc import program_file_or_raise, signed_rundown
from broadcast.regions.models import Endpoint

router = APIRouter(prefix="/device/v1", tags=["devices"], dependencies=[Depends(reject_unknown_query)])

IfNoneMatch = Annotated[str | None, Header()]


@router.get("/keys", response_model=PublishedKeys)
def published_keys(session: SessionDep, settings: SettingsDep) -> PublishedKeys:
    """The public keys devices verify envelopes with (no authentication)."""
    keys.ensure_active_key(session, settings=settings)
    found = keys.published_keys(session, settings=settings, now=utc_now())
    return PublishedKeys(keys=[PublicKeyOut.model_validate(key, from_attributes=True) for key in found])


@router.get(
    "/rundown",
    responses={304: {"description": "未变化（If-None-Match 与 ETag 相同）"}},
)
def get_rundown(
    session: SessionDep, settings: SettingsDep, endpoint: DeviceDep, if_none_match: IfNoneMatch = None
) -> Response:
    """This device's signed rundown for the next hours; 304 when unchanged."""
    etag, envelope = signed_rundown(
        session, endpoint=endpoint, settings=settings, if_none_match=if_none_match, now=utc_now()
    )
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if envelope is None:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return JSONResponse(envelope, headers=headers)


@router.get(
    "/audio/{sha256}",
    response_class=FileResponse,
    responses={
        200: {"content": {HOUSE_MEDIA_TYPE: {}}, "description": "节目音频（支持 Range）"},
        206: {"description": "部分内容（Range）"},
        304: {"description": "未修改"},
        416: {"description": "Range 超出文件长度"},
    },
)
def get_program_audio(
    sha256: str, session: SessionDep, settings: SettingsDep, _: DeviceDep, if_none_match: IfNoneMatch = None
) -> Response:
    """A program file named by its sha256, as listed in the rundown."""
    path = program_file_or_raise(session, sha256, store=get_store(settings))
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}
    if etag_matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return FileResponse(path, media_type=HOUSE_MEDIA_TYPE, headers=headers)


@router.get("/alerts", response_model=AlertsDocument)
def get_alerts(session: SessionDep, settings: SettingsDep, endpoint: DeviceDep) -> AlertsDocument:
    """Every alert (and cancel) this device must obey now, signed: fetched after a welcome that
    counts some (the welcome's ``alerts``)."""
    envelopes = device_alerts(session, endpoint=endpoint, settings=settings, now=utc_now())
    return AlertsDocument(envelopes=envelopes)


def _store_events(
    engine: Engine, endpoint: Endpoint, events: list[Any], retention_months: int
) -> EventsResult:
    with transaction(engine) as session:
        return ingest_events(
            session, endpoint=endpoint, events=events, now=utc_now(), retention_months=retention_months
        )


@router.post("/events", response_model=EventsResult, dependencies=[Depends(limit_body)])
async def post_events(
    batch: EventBatch, request: Request, settings: SettingsDep, endpoint: DeviceDep
) -> EventsResult:
    """Play events, 1 to 500 per batch; retries are counted once.

    The batch is stored in a transaction of its own that begins and commits inside one worker
    thread, not in ``SessionDep``'s: that one commits after the route returns, and a sync route's
    answer is first validated in another worker thread. In a city-wide burst of reports, requests
    holding pool connections (and, on SQLite, the write lock) while they wait for a thread, and
    threads waiting for a connection, would wait for each other until the pool times out.
    """
    return await run_in_threadpool(
        _store_events, get_engine(request), endpoint, batch.events, settings.play_log_retention_months
    )
