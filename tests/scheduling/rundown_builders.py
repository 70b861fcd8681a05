"""Builders for rundown tests: playing campaigns stored as the campaigns service stores them."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from sqlmodel import Session

from broadcast.playlists.models import PlaylistRevision
from broadcast.scheduling.models import Campaign, CampaignStatus
from broadcast.scheduling.presets import daily_at
from broadcast.scheduling.recurrence import SHANGHAI, Season

_counter = itertools.count(1)


def make_campaign(
    session: Session,
    *,
    revision: PlaylistRevision,
    selector: dict[str, Any],
    times: list[str],
    season: tuple[date, date],
    windows: tuple[str, ...] = ("06:00-21:00",),
    priority: int = 5,
    max_plays_per_day: int = 3,
    status: CampaignStatus = CampaignStatus.active,
    name: str | None = None,
) -> Campaign:
    n = next(_counter)
    rule = daily_at(times, season=Season(*season), tz=SHANGHAI)
    campaign = Campaign(
        key=f"test-{n}",
        name=name or f"计划{n}",
        playlist_id=revision.playlist_id,
        revision_id=revision.id or 0,
        selector=selector,
        season_start=season[0],
        season_end=season[1],
        dtstart=rule.dtstart,
        rrule=rule.rrule,
        windows=list(windows),
        priority=priority,
        max_plays_per_day=max_plays_per_day,
        status=status,
    )
    session.add(campaign)
    session.flush()
    return campaign
