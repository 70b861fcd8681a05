"""The conflict report (冲突报告): which other campaigns collide with this one, on how many endpoints, when.

A warning shown on submission and on request; it never blocks anything.

**What is compared.** The campaign against every other submitted, approved or active campaign that
reaches at least one of its endpoints and whose season overlaps its own from today on. Endpoints
are grouped into classes (same campaigns, same quiet hours) over the campaign's own endpoints only,
and the pure :func:`broadcast.scheduling.explain.conflict_report` compiles each campaign alone and
compares their slots class by class.

**Bounded.** For each other campaign only the first :data:`CHECK_DAYS` local days of the seasons'
overlap (from today on) are compiled, so the cost does not grow with season length; a recurrence
that collides only later in a long overlap is not reported. Campaigns whose program has no finished
render or whose target can no longer be evaluated cannot play and are left out.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import NamedTuple

from sqlmodel import Session

from broadcast.config import Settings
from broadcast.errors import Invalid
from broadcast.scheduling.classes import ClassPlan, plan_classes
from broadcast.scheduling.compiler import CampaignSpec, local_days
from broadcast.scheduling.explain import Collision, conflict_report
from broadcast.scheduling.models import Campaign, CampaignStatus
from broadcast.scheduling.quiet import endpoint_quiet_hours
from broadcast.scheduling.schemas import STATUS_NAMES, CollisionOut, ConflictReport
from broadcast.scheduling.service import (
    campaign_spec,
    list_by_status,
    local_today,
    program_duration_ms,
    require_rendered,
)
from broadcast.targets.schemas import Selector
from broadcast.targets.service import resolve_endpoint_ids

CHECK_DAYS = 14
COMPARED = (CampaignStatus.submitted, CampaignStatus.approved, CampaignStatus.active)
NOTE = (
    f"对每个与本计划季节重叠、覆盖相同终端的计划（待审批、已批准、播出中），"
    f"只检查重叠期内自今天起的前 {CHECK_DAYS} 天；冲突仅作提醒，不影响提交。"
)


class _Rival(NamedTuple):
    campaign: Campaign
    endpoints: frozenset[int]
    duration_ms: int
    first: date
    last: date


def campaign_conflicts(
    session: Session, *, campaign: Campaign, settings: Settings, today: date | None = None
) -> ConflictReport:
    """The collisions of ``campaign`` with the other campaigns (see the module doc)."""
    today = today or local_today(settings.tz)
    duration = require_rendered(session, campaign)
    mine = frozenset(resolve_endpoint_ids(session, selector=Selector.model_validate(campaign.selector)))
    rivals = _rivals(session, campaign, mine, today)
    plan = _plan(session, settings, campaign, mine, rivals)
    sizes = {class_id: len(members) for class_id, members in plan.members.items()}
    candidate = _spec(campaign, duration, plan, settings)
    by_window: dict[tuple[date, date], list[_Rival]] = defaultdict(list)
    for rival in rivals:
        by_window[rival.first, min(rival.last, rival.first + timedelta(days=CHECK_DAYS - 1))].append(rival)
    collisions: list[CollisionOut] = []
    for (first, last), group in sorted(by_window.items()):
        start, end = local_days(first, (last - first).days + 1, settings.tz)
        specs = [_spec(rival.campaign, rival.duration_ms, plan, settings) for rival in group]
        found = conflict_report(
            candidate, specs, plan.quiet, sizes, window_start=start, window_end=end, tz=settings.tz
        )
        names = {rival.campaign.id: rival.campaign for rival in group}
        collisions.extend(_collision_out(hit, names[hit.campaign_id], campaign, settings) for hit in found)
    collisions.sort(key=lambda item: (-item.endpoints, item.campaign_id))
    return ConflictReport(
        campaign_id=campaign.id or 0, checked_days=CHECK_DAYS, note=NOTE, collisions=collisions
    )


def _rivals(session: Session, campaign: Campaign, mine: frozenset[int], today: date) -> list[_Rival]:
    """Other campaigns that share endpoints and season days (from today on) and could play."""
    rivals = []
    for other in list_by_status(session, COMPARED):
        first = max(campaign.season_start, other.season_start, today)
        last = min(campaign.season_end, other.season_end)
        if other.id == campaign.id or first > last:
            continue
        duration = program_duration_ms(session, other.revision_id)
        shared = _reached(session, other) & mine
        if duration is not None and shared:
            rivals.append(_Rival(other, shared, duration, first, last))
    return rivals


def _reached(session: Session, campaign: Campaign) -> frozenset[int]:
    try:
        selector = Selector.model_validate(campaign.selector)
        return frozenset(resolve_endpoint_ids(session, selector=selector))
    except Invalid:
        return frozenset()


def _plan(
    session: Session, settings: Settings, campaign: Campaign, mine: frozenset[int], rivals: list[_Rival]
) -> ClassPlan:
    """Classes over the campaign's own endpoints: only there can it collide."""
    own_id = campaign.id or 0
    endpoint_campaigns = {endpoint_id: {own_id} for endpoint_id in mine}
    for rival in rivals:
        for endpoint_id in rival.endpoints:
            endpoint_campaigns[endpoint_id].add(rival.campaign.id or 0)
    quiet = endpoint_quiet_hours(session, settings=settings, endpoint_ids=mine)
    frozen = {endpoint_id: frozenset(ids) for endpoint_id, ids in endpoint_campaigns.items()}
    return plan_classes(frozen, quiet)


def _spec(campaign: Campaign, duration_ms: int, plan: ClassPlan, settings: Settings) -> CampaignSpec:
    classes = plan.targets.get(campaign.id or 0, frozenset())
    return campaign_spec(campaign, duration_ms=duration_ms, classes=classes, tz=settings.tz)


def _collision_out(hit: Collision, other: Campaign, campaign: Campaign, settings: Settings) -> CollisionOut:
    local = [at.astimezone(settings.tz) for at in hit.times]
    days = sorted({at.date() for at in local})
    times = sorted({f"{at:%H:%M}" for at in local})
    return CollisionOut(
        campaign_id=hit.campaign_id,
        key=other.key,
        name=other.name,
        priority=other.priority,
        status=other.status,
        endpoints=hit.endpoints,
        times=times,
        first_day=days[0],
        last_day=days[-1],
        days=len(days),
        message=_message(hit, other, campaign, days, times),
    )


def _message(hit: Collision, other: Campaign, campaign: Campaign, days: list[date], times: list[str]) -> str:
    span = _day(days[0]) if len(days) == 1 else f"{_day(days[0])}至{_day(days[-1])}"
    if other.priority > campaign.priority:
        outcome = "对方优先级更高，本计划届时会顺延到时段内的空档，没有空档则不播"
    elif other.priority < campaign.priority:
        outcome = "本计划优先级更高，对方届时会顺延或不播"
    else:
        outcome = "优先级相同，同一时刻先到先排，同时到达时编号较小的计划优先"
    return (
        f"与“{other.name}”（#{other.id}，{STATUS_NAMES[other.status]}，优先级 {other.priority}）"
        f"在 {hit.endpoints} 个终端上冲突：{span}（{len(days)} 天）{'、'.join(times)}。{outcome}。"
    )


def _day(day: date) -> str:
    return f"{day.month}月{day.day}日"
