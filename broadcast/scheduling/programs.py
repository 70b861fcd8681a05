"""Ask for the programs that materialized rundowns will play, before the speakers need them.

A slot plays its campaign's pinned revision rendered with the template values of the place and
day it plays at (a ``{village}`` bulletin is one program per village). Speakers are only sent
slots whose program is rendered, so after each materialization the scheduler queues every
missing render once: one per distinct (campaign, revision, place, day) that actually changes
the program. Existing renders are found, not redone; the render workers do the work.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, tzinfo

from sqlmodel import Session, col, select

from broadcast.auth.audit import SYSTEM
from broadcast.bulletins.templates import RenderScope
from broadcast.dispatch.rundown_doc import slot_render_request
from broadcast.errors import BroadcastError
from broadcast.playlists.models import PlaylistRevision
from broadcast.playlists.renders import ContextNeeds, context_needs, request_render
from broadcast.regions.models import Endpoint, Village
from broadcast.scheduling.models import Campaign, RundownSlot, SlotStatus

log = logging.getLogger(__name__)

Occurrence = tuple[int, int, int, datetime]  # campaign, revision, village, occurrence


def _planned(session: Session, *, window_start: datetime, window_end: datetime) -> list[Occurrence]:
    query = (
        select(
            RundownSlot.campaign_id, RundownSlot.revision_id, Endpoint.village_id, RundownSlot.occurrence_at
        )
        .join(Endpoint, col(Endpoint.id) == RundownSlot.endpoint_id)
        .where(
            RundownSlot.status == SlotStatus.planned,
            col(RundownSlot.occurrence_at) >= window_start,
            col(RundownSlot.occurrence_at) < window_end,
        )
        .distinct()
    )
    return list(session.exec(query).all())


def _program_key(needs: ContextNeeds, village: Village, day: date) -> tuple[object, ...]:
    place: object = {
        RenderScope.once: None,
        RenderScope.per_town: village.town_id,
        RenderScope.per_village: village.id,
    }[needs.scope]
    return (place, day if needs.dated else None)


def request_slot_programs(
    session: Session, *, window_start: datetime, window_end: datetime, tz: tzinfo
) -> int:
    """Queue the renders the window's planned slots need; returns how many requests were made."""
    needs: dict[int, ContextNeeds] = {}
    villages = {v.id: v for v in session.exec(select(Village)).all()}
    wanted: dict[tuple[object, ...], tuple[int, int, Village, date]] = {}
    for campaign_id, revision_id, village_id, occurrence in _planned(
        session, window_start=window_start, window_end=window_end
    ):
        revision = session.get(PlaylistRevision, revision_id)
        if revision is None:
            continue
        if revision_id not in needs:
            needs[revision_id] = context_needs(session, revision)
        village, day = villages[village_id], occurrence.astimezone(tz).date()
        key = (campaign_id, revision_id, *_program_key(needs[revision_id], village, day))
        wanted.setdefault(key, (campaign_id, revision_id, village, day))
    for campaign_id, revision_id, village, day in wanted.values():
        _request(session, campaign_id=campaign_id, revision_id=revision_id, village=village, day=day)
    return len(wanted)


def _request(session: Session, *, campaign_id: int, revision_id: int, village: Village, day: date) -> None:
    campaign = session.get(Campaign, campaign_id)
    revision = session.get(PlaylistRevision, revision_id)
    if campaign is None or revision is None:
        return
    data = slot_render_request(campaign, village_code=village.code, local_date=day)
    try:
        with session.begin_nested():
            request_render(session, revision=revision, data=data, actor=SYSTEM, today=day)
    except BroadcastError as exc:
        # A campaign whose values no longer fit its bulletins: its slots stay unplayable and the
        # campaign's page says why; the other programs are still requested.
        log.warning(
            "program for campaign %s in %s on %s not requested: %s", campaign_id, village.code, day, exc
        )
