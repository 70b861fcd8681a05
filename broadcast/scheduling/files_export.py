"""Write the database's campaigns back as ``schedules/`` files that apply to no change.

The exporter writes the shortest form that means exactly what is stored: a recurrence is written as
a preset when the preset rebuilds the same RFC 5545 parts, else as raw DTSTART/RRULE/RDATE/EXDATE;
a season (and the dates inside it) as MM-DD when the yearly form resolves, on the same reference
date, to the stored dates, else as full dates. Bulletin keys are not stored, so they are written
as b1, b2... in order of first use, which is how apply matches them again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, col, select

from broadcast.content.models import Bulletin, Chime, Clip
from broadcast.playlists.models import ItemKind, Playlist, PlaylistItem, PlaylistRevision
from broadcast.playlists.service import items_of
from broadcast.scheduling.files import CHIME_ALIASES, SUFFIX, SeasonSpec, place_day, resolve_season
from broadcast.scheduling.files_check import bulletins_in_order
from broadcast.scheduling.models import Campaign, CampaignStatus
from broadcast.scheduling.presets import daily_at, every_n_days, times_of_day, weekdays_at
from broadcast.scheduling.recurrence import Recurrence, RecurrenceError, Season
from broadcast.scheduling.service import recurrence_of
from broadcast.targets.schemas import Selector

_STATUS = {CampaignStatus.draft: "draft", CampaignStatus.submitted: "submitted"}
_ALIAS_OF = {key: alias for alias, key in CHIME_ALIASES.items()}
_BULLETIN_DEFAULTS: dict[str, Any] = {"custom_fields": [], "engine": None, "voice": None, "rate": 100}


def _month_day(day: date) -> str:
    return f"{day.month:02d}-{day.day:02d}"


def _yearly(campaign: Campaign, today: date) -> bool:
    """Whether MM-DD means the stored season on ``today`` (and so each of its days unambiguously)."""
    first, last = campaign.season_start, campaign.season_end
    if (first.month, first.day) == (2, 29) or (last.month, last.day) == (2, 29):
        return False
    spec = SeasonSpec(first=_month_day(first), last=_month_day(last))
    return resolve_season(spec, today=today) == (first, last) and (last - first).days < 365


def _day_text(day: date, season: tuple[date, date] | None) -> str:
    if season is None or (day.month, day.day) == (2, 29):
        return day.isoformat()
    return _month_day(day) if place_day(_month_day(day), season) == day else day.isoformat()


def _preset(rule: Recurrence) -> dict[str, Any] | None:
    """The preset that rebuilds exactly this rule, if any."""
    if rule.rrule is None:
        return _dates_preset(rule)
    assert rule.season is not None
    times = [at.strftime("%H:%M") for at in times_of_day(rule)]
    interval = int(rule.parts.get("INTERVAL", "1"))
    options: list[tuple[dict[str, Any], Callable[[], Recurrence]]] = [
        (
            {"preset": "daily"},
            lambda: daily_at(times, season=_season(rule), exception_days=rule.exception_days),
        ),
        (
            {"preset": "weekdays"},
            lambda: weekdays_at(times, season=_season(rule), exception_days=rule.exception_days),
        ),
        (
            {"preset": "every_n_days", "n": interval},
            lambda: every_n_days(interval, times, season=_season(rule), exception_days=rule.exception_days),
        ),
    ]
    for values, build in options:
        try:
            if build() == rule:
                return {**values, "times": times}
        except RecurrenceError:
            continue
    return None


def _season(rule: Recurrence) -> Season:
    assert rule.season is not None
    return rule.season


def _dates_preset(rule: Recurrence) -> dict[str, Any] | None:
    moments = sorted({rule.dtstart, *rule.rdates})
    local = [at.astimezone(rule.tz) for at in moments]
    days = sorted({at.date() for at in local})
    times = sorted({at.time() for at in local})
    if rule.exdates or len(local) != len(days) * len(times) or moments[0] != rule.dtstart:
        return None
    return {"preset": "dates", "dates": days, "times": [at.strftime("%H:%M") for at in times]}


def _raw(rule: Recurrence, season: tuple[date, date]) -> dict[str, Any]:
    local = rule.dtstart.astimezone(rule.tz)
    on_first_day = local.date() == season[0] and not local.second
    values: dict[str, Any] = {"dtstart": local.strftime("%H:%M") if on_first_day else local.isoformat()}
    if rule.rrule is not None:
        values["rrule"] = rule.rrule
    if rule.rdates:
        values["rdates"] = [at.astimezone(rule.tz).isoformat() for at in rule.rdates]
    if rule.exdates:
        values["exdates"] = [at.astimezone(rule.tz).isoformat() for at in rule.exdates]
    return values


def _items(session: Session, items: list[PlaylistItem], keys: dict[int, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        if item.kind == ItemKind.chime:
            chime = session.get_one(Chime, item.chime_id)
            entry: dict[str, Any] = {"chime": _ALIAS_OF.get(chime.key, chime.key)}
        elif item.kind == ItemKind.clip:
            entry = {"clip": session.get_one(Clip, item.clip_id).source_sha256}
        elif item.kind == ItemKind.bulletin:
            entry = {"bulletin": keys[item.bulletin_id or 0]}
        else:
            entry = {"silence_ms": item.silence_ms}
        if item.repeat != 1:
            entry["repeat"] = item.repeat
        out.append(entry)
    return out


def _bulletin(bulletin: Bulletin, key: str) -> dict[str, Any]:
    values: dict[str, Any] = {"key": key, "title": bulletin.title, "text": bulletin.text}
    for name, default in _BULLETIN_DEFAULTS.items():
        if getattr(bulletin, name) != default:
            values[name] = getattr(bulletin, name)
    return values


def _content(session: Session, campaign: Campaign) -> dict[str, Any]:
    playlist = session.get_one(Playlist, campaign.playlist_id)
    revision = session.get_one(PlaylistRevision, campaign.revision_id)
    items = items_of(session, revision)
    bulletins = bulletins_in_order(session, items)
    keys = {bulletin.id or 0: f"b{index}" for index, bulletin in enumerate(bulletins, start=1)}
    listing: dict[str, Any] = {"name": playlist.name}
    if playlist.description:
        listing["description"] = playlist.description
    if revision.repeat != 1:
        listing["repeat"] = revision.repeat
    listing["items"] = _items(session, items, keys)
    return {"bulletins": [_bulletin(b, keys[b.id or 0]) for b in bulletins], "playlist": listing}


def campaign_document(session: Session, campaign: Campaign, *, today: date) -> dict[str, Any]:
    """The file of one campaign as plain data, in the order the README documents."""
    rule = recurrence_of(campaign)
    season = (campaign.season_start, campaign.season_end)
    yearly = season if _yearly(campaign, today) else None
    recurrence = _preset(rule) or _raw(rule, season)
    if "dates" in recurrence:
        recurrence["dates"] = [_day_text(day, yearly) for day in recurrence["dates"]]
    document: dict[str, Any] = {"key": campaign.key, "name": campaign.name}
    if campaign.description:
        document["description"] = campaign.description
    document["status"] = _STATUS.get(campaign.status, "approved")
    document["content"] = _content(session, campaign)
    document["target"] = Selector.model_validate(campaign.selector).model_dump(
        mode="json", exclude_defaults=True
    )
    document["season"] = {
        "first": _month_day(season[0]) if yearly else season[0].isoformat(),
        "last": _month_day(season[1]) if yearly else season[1].isoformat(),
    }
    document["recurrence"] = recurrence
    document["windows"] = list(campaign.windows)
    document["priority"] = campaign.priority
    document["max_plays_per_day"] = campaign.max_plays_per_day
    if campaign.exception_dates:
        days = [date.fromisoformat(text) for text in campaign.exception_dates]
        document["exception_dates"] = [_day_text(day, yearly) for day in days]
    if campaign.field_values:
        document["field_values"] = dict(campaign.field_values)
    return document


def export_folder(session: Session, folder: Path, *, today: date) -> list[Path]:
    """One file per campaign (by key) in ``folder``, created if missing; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for campaign in session.exec(select(Campaign).order_by(col(Campaign.key))).all():
        path = folder / f"{campaign.key}{SUFFIX}"
        document = campaign_document(session, campaign, today=today)
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=1000)
        path.write_text(f"# 由 broadcast schedules export 于 {today} 导出\n{text}", encoding="utf-8")
        written.append(path)
    return written
