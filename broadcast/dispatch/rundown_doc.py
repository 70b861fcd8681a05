"""An endpoint's rundown document (what it will play next) and the program files it names.

A slot plays the finished render of its revision made for the endpoint's place, the slot's
local date and the campaign's field values (``slot_render_request`` is that rule, in one
place). A slot whose program is not rendered yet is left out: a device can only play what it
can download. The ETag hashes what the device acts on (endpoint, volume, slots), not the
moving window or the signature stamps, so an unchanged rundown answers 304.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import or_
from sqlmodel import Session, col, select

from broadcast.alerts.models import Alert
from broadcast.config import Settings
from broadcast.content.models import AudioBlob
from broadcast.content.service import etag_matches, get_blob_or_raise
from broadcast.content.store import AudioStore
from broadcast.dispatch.envelope import canonical, format_time
from broadcast.dispatch.sequence import RUNDOWN
from broadcast.dispatch.signing import sign
from broadcast.errors import Invalid, NotFound
from broadcast.playlists.models import PlaylistRevision, Render, RenderStatus
from broadcast.playlists.renders import build_context, context_key
from broadcast.playlists.schemas import RenderRequest
from broadcast.regions.models import Endpoint, Village
from broadcast.scheduling.models import Campaign, RundownSlot, SlotStatus

log = logging.getLogger(__name__)

AUDIO_PATH = "/device/v1/audio/{sha256}"


@dataclass(frozen=True)
class Rundown:
    payload: dict[str, Any]
    etag: str


def slot_render_request(campaign: Campaign, *, village_code: str, local_date: date) -> RenderRequest:
    """The template values of the program a slot of ``campaign`` plays in a village on a day."""
    return RenderRequest(village=village_code, date=local_date, fields=dict(campaign.field_values))


@dataclass
class _Programs:
    """Finds slot programs, once per (campaign, revision, local day) within one document."""

    session: Session
    village: Village
    found: dict[tuple[int, int, date], dict[str, Any] | None] = field(default_factory=dict)

    def for_slot(self, slot: RundownSlot, campaign: Campaign, day: date) -> dict[str, Any] | None:
        key = (slot.campaign_id, slot.revision_id, day)
        if key not in self.found:
            self.found[key] = self._lookup(slot.revision_id, campaign, day)
        return self.found[key]

    def _lookup(self, revision_id: int, campaign: Campaign, day: date) -> dict[str, Any] | None:
        revision = self.session.get(PlaylistRevision, revision_id)
        if revision is None:
            return None
        try:
            data = slot_render_request(campaign, village_code=self.village.code, local_date=day)
            context = build_context(self.session, revision=revision, data=data, today=day)
        except (Invalid, ValidationError) as exc:
            log.warning("宣传计划 %s 的节目无法确定渲染参数：%s", campaign.id, exc)
            return None
        query = select(Render, AudioBlob).where(
            Render.revision_id == revision_id,
            Render.context_key == context_key(context),
            Render.status == RenderStatus.done,
            Render.blob_sha256 == AudioBlob.sha256,
        )
        row = self.session.exec(query).first()
        if row is None:
            return None
        render, blob = row
        return {
            "sha256": blob.sha256,
            "size_bytes": blob.size_bytes,
            "duration_ms": render.duration_ms or blob.duration_ms,
            "url": AUDIO_PATH.format(sha256=blob.sha256),
        }


def _planned_slots(session: Session, endpoint: Endpoint, start: datetime, end: datetime) -> list[RundownSlot]:
    query = select(RundownSlot).where(
        RundownSlot.endpoint_id == endpoint.id,
        RundownSlot.status == SlotStatus.planned,
        col(RundownSlot.ends_at) > start,
        col(RundownSlot.starts_at) < end,
    )
    return list(session.exec(query.order_by(col(RundownSlot.starts_at), col(RundownSlot.id))).all())


def _slot_entries(
    session: Session, endpoint: Endpoint, slots: list[RundownSlot], settings: Settings
) -> list[Any]:
    campaign_ids = {slot.campaign_id for slot in slots}
    campaigns = {c.id: c for c in session.exec(select(Campaign).where(col(Campaign.id).in_(campaign_ids)))}
    programs = _Programs(session, session.get_one(Village, endpoint.village_id))
    entries = []
    for slot in slots:
        day = slot.starts_at.astimezone(settings.tz).date()
        program = programs.for_slot(slot, campaigns[slot.campaign_id], day)
        if program is None:
            continue
        entries.append(
            {
                "id": slot.id,
                "starts_at": format_time(slot.starts_at),
                "ends_at": format_time(slot.ends_at),
                "campaign_id": slot.campaign_id,
                "revision_id": slot.revision_id,
                "program": program,
            }
        )
    return entries


def build_rundown(session: Session, *, endpoint: Endpoint, settings: Settings, now: datetime) -> Rundown:
    """The unsigned rundown payload of ``endpoint`` from ``now`` to the horizon, and its ETag."""
    window_end = now + timedelta(hours=settings.rundown_horizon_h)
    slots = _planned_slots(session, endpoint, now, window_end)
    body = {
        "endpoint": endpoint.code,
        "volume": endpoint.volume,
        "slots": _slot_entries(session, endpoint, slots, settings),
    }
    etag = f'"{hashlib.sha256(canonical(body)).hexdigest()}"'
    payload = {
        "type": RUNDOWN,
        **body,
        "window_start": format_time(now),
        "window_end": format_time(window_end),
    }
    return Rundown(payload=payload, etag=etag)


def signed_rundown(
    session: Session, *, endpoint: Endpoint, settings: Settings, if_none_match: str | None, now: datetime
) -> tuple[str, dict[str, Any] | None]:
    """The ETag and the signed envelope; no envelope (304) when the device already has this rundown."""
    rundown = build_rundown(session, endpoint=endpoint, settings=settings, now=now)
    if etag_matches(if_none_match, rundown.etag):
        return rundown.etag, None
    return rundown.etag, sign(session, rundown.payload, settings=settings, now=now)


def program_file_or_raise(session: Session, sha256: str, *, store: AudioStore) -> Path:
    """A rendered program's or an alert's file. Devices get programs only, not the raw material."""
    query = select(Render.id).where(Render.blob_sha256 == sha256, Render.status == RenderStatus.done)
    alert = select(Alert.id).where(
        or_(col(Alert.program_sha256) == sha256, col(Alert.all_clear_sha256) == sha256)
    )
    if session.exec(query.limit(1)).first() is None and session.exec(alert.limit(1)).first() is None:
        raise NotFound(f"节目音频 {sha256[:16]}… 不存在：请重新获取播出单后按其中的地址下载")
    _blob, path = get_blob_or_raise(session, sha256, store=store)
    return path
