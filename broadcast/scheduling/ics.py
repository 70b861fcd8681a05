"""Campaigns as iCalendar (RFC 5545) feeds that any calendar app opens.

One VEVENT per campaign: DTSTART with TZID=Asia/Shanghai, the campaign's RRULE, RDATE and EXDATE,
a DURATION equal to the rendered program's length, a stable UID, and a VTIMEZONE added by
``Calendar.add_missing_timezones()``.

A calendar app knows nothing of seasons or exception days, so the writer folds them into plain
RFC 5545: the RRULE gets an UNTIL at the end of the season (rules with COUNT keep COUNT and have
their out-of-season instances listed as EXDATEs), instances before the season and instances on
exception days become EXDATEs, RDATEs outside the season are left out. The feed therefore yields
exactly the occurrences the pure core's :func:`expand` gives, which the tests check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, vRecur
from sqlmodel import Session, col, select

from broadcast.errors import NotFound
from broadcast.regions.models import Endpoint, Village
from broadcast.regions.service import get_village_or_raise
from broadcast.scheduling.models import Campaign, CampaignStatus
from broadcast.scheduling.presets import describe
from broadcast.scheduling.recurrence import Recurrence, expand, expand_detailed
from broadcast.scheduling.schemas import STATUS_NAMES
from broadcast.scheduling.service import get_campaign_or_raise, program_duration_ms, recurrence_of
from broadcast.targets.schemas import Selector
from broadcast.targets.service import resolve_selector

PRODID = "-//broadcast//应急云广播宣传计划//ZH"
UID_DOMAIN = "broadcast.invalid"
MEDIA_TYPE = "text/calendar; charset=utf-8"
_FAR_END = datetime(2999, 12, 31, tzinfo=UTC)
_EVENT_STATUS = {
    CampaignStatus.draft: "TENTATIVE",
    CampaignStatus.submitted: "TENTATIVE",
    CampaignStatus.approved: "CONFIRMED",
    CampaignStatus.active: "CONFIRMED",
    CampaignStatus.paused: "TENTATIVE",
    CampaignStatus.ended: "CANCELLED",
}
# What a village feed lists: campaigns that will play, or did and were paused.
VILLAGE_FEED_STATUSES = (CampaignStatus.approved, CampaignStatus.active, CampaignStatus.paused)


@dataclass(frozen=True)
class IcsRule:
    """A recurrence in the shape a calendar app understands (no season, no exception days)."""

    dtstart: datetime
    rrule: str | None
    rdates: tuple[datetime, ...]
    exdates: tuple[datetime, ...]


@dataclass(frozen=True)
class CalendarEntry:
    uid: str
    summary: str
    description: str
    rule: Recurrence
    duration: timedelta | None
    status: str
    sequence: int
    stamp: datetime


def ics_rule(rule: Recurrence) -> IcsRule:
    """Fold the season and exception days of ``rule`` into UNTIL and EXDATEs (see module doc)."""
    if rule.season is None:
        return IcsRule(rule.dtstart, rule.rrule, rule.rdates, rule.exdates)
    lo, hi = rule.season.bounds(rule.tz)
    inside = expand_detailed(rule, window_start=lo, window_end=hi)
    exdates = {excluded.at for excluded in inside.excluded}
    bare = Recurrence(dtstart=rule.dtstart, rrule=rule.rrule)
    if rule.dtstart < lo:
        exdates.update(expand(bare, window_start=rule.dtstart, window_end=lo))
    text = rule.rrule
    if text is not None and "COUNT" in rule.parts:
        exdates.update(expand(bare, window_start=hi, window_end=_FAR_END))
    elif text is not None:
        text = _capped(rule, hi - timedelta(seconds=1))
    elif not lo <= rule.dtstart < hi:
        exdates.add(rule.dtstart.astimezone(UTC))
    rdates = tuple(at for at in rule.rdates if lo <= at < hi)
    local = tuple(sorted(at.astimezone(rule.tz) for at in exdates))
    return IcsRule(rule.dtstart, text, rdates, local)


def _capped(rule: Recurrence, last: datetime) -> str:
    parts = dict(rule.parts)
    until = last.astimezone(UTC)
    if "UNTIL" in parts:
        until = min(until, datetime.strptime(parts["UNTIL"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
    parts["UNTIL"] = until.strftime("%Y%m%dT%H%M%SZ")
    parts.setdefault("WKST", "MO")  # RFC 5545's default, written out for apps that assume Sunday
    return ";".join(f"{name}={value}" for name, value in parts.items())


def event_of(entry: CalendarEntry) -> Event:
    folded = ics_rule(entry.rule)
    event = Event()
    event.add("uid", entry.uid)
    event.add("dtstamp", entry.stamp.astimezone(UTC))
    event.add("last-modified", entry.stamp.astimezone(UTC))
    event.add("sequence", entry.sequence)
    event.add("summary", entry.summary)
    event.add("description", entry.description)
    event.add("status", entry.status)
    event.add("dtstart", folded.dtstart.astimezone(entry.rule.tz))
    if entry.duration is not None:
        event.add("duration", entry.duration)
    if folded.rrule is not None:
        event.add("rrule", vRecur.from_ical(folded.rrule))
    if folded.rdates:
        event.add("rdate", [at.astimezone(entry.rule.tz) for at in folded.rdates])
    if folded.exdates:
        event.add("exdate", list(folded.exdates))
    return event


def calendar_of(name: str, entries: Iterable[CalendarEntry]) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", "Asia/Shanghai")
    for entry in entries:
        calendar.add_component(event_of(entry))
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


def campaign_uid(campaign: Campaign) -> str:
    """Stable across renames and edits: the campaign's key never changes."""
    return f"campaign-{campaign.key}@{UID_DOMAIN}"


def program_duration(session: Session, revision_id: int) -> timedelta | None:
    """The program's length in whole seconds, rounded up (None before it is rendered)."""
    duration_ms = program_duration_ms(session, revision_id)
    return None if duration_ms is None else timedelta(seconds=-(-duration_ms // 1000))


def _description(campaign: Campaign, rule: Recurrence, duration: timedelta | None) -> str:
    length = "节目尚未合成，时长未知" if duration is None else f"节目时长 {_clock(duration)}"
    lines = [
        campaign.description,
        f"播出规则：{describe(rule)}",
        f"播出窗口：{'、'.join(campaign.windows)}",
        f"优先级 {campaign.priority}；每个终端每天最多播 {campaign.max_plays_per_day} 次；{length}",
        f"状态：{STATUS_NAMES[campaign.status]}（第 {campaign.version} 版）",
    ]
    return "\n".join(line for line in lines if line)


def _clock(duration: timedelta) -> str:
    minutes, seconds = divmod(int(duration.total_seconds()), 60)
    return f"{minutes} 分 {seconds} 秒" if minutes else f"{seconds} 秒"


def entry_of(session: Session, campaign: Campaign) -> CalendarEntry:
    rule = recurrence_of(campaign)
    duration = program_duration(session, campaign.revision_id)
    return CalendarEntry(
        uid=campaign_uid(campaign),
        summary=f"{campaign.name}（{STATUS_NAMES[campaign.status]}）",
        description=_description(campaign, rule, duration),
        rule=rule,
        duration=duration,
        status=_EVENT_STATUS[campaign.status],
        sequence=campaign.version,
        stamp=campaign.updated_at,
    )


@dataclass(frozen=True)
class Feed:
    body: bytes
    filename: str


def campaign_feed(session: Session, *, campaign_id: int, scope: frozenset[int] | None) -> Feed:
    """One campaign's calendar; a scoped reader sees only campaigns reaching one of her villages."""
    campaign = get_campaign_or_raise(session, campaign_id)
    if scope is not None and not reaches_any(session, campaign=campaign, village_ids=scope):
        raise NotFound(f"宣传计划 {campaign_id} 不存在")
    body = calendar_of(f"宣传计划：{campaign.name}", [entry_of(session, campaign)])
    return Feed(body, f"campaign-{campaign.key}.ics")


def reaches_any(session: Session, *, campaign: Campaign, village_ids: Iterable[int]) -> bool:
    """Whether the campaign's target reaches at least one endpoint in these villages."""
    reached = resolve_selector(session, selector=Selector.model_validate(campaign.selector))
    query = select(Endpoint.id).where(
        col(Endpoint.village_id).in_(list(village_ids)), col(Endpoint.id).in_(reached)
    )
    return session.exec(query.limit(1)).first() is not None


def campaigns_reaching(session: Session, *, village: Village) -> list[Campaign]:
    """Approved, active or paused campaigns whose targets reach at least one of the village's endpoints."""
    query = (
        select(Campaign)
        .where(col(Campaign.status).in_(VILLAGE_FEED_STATUSES))
        .order_by(col(Campaign.season_start), col(Campaign.key))
    )
    ids = [village.id or 0]
    return [c for c in session.exec(query).all() if reaches_any(session, campaign=c, village_ids=ids)]


def village_feed(session: Session, *, code: str, scope: frozenset[int] | None) -> Feed:
    """Every campaign reaching the village (a scoped reader: only her own villages)."""
    village = get_village_or_raise(session, code, scope=scope)
    entries = [entry_of(session, campaign) for campaign in campaigns_reaching(session, village=village)]
    return Feed(calendar_of(f"{village.name} 广播宣传日历", entries), f"village-{village.code}.ics")
