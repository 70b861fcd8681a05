"""Campaigns (宣传计划) and quiet hours (静默时段) under /api/v1.

Propagandists and admins write campaigns and approve others' campaigns; duty officers may read
them. Everyone signed in may read the quiet hours; only admins change them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from broadcast.deps import ActorDep, AdminUser, ContentUser, CurrentUser, SessionDep, SettingsDep, StaffUser
from broadcast.pagination import Page, PageDep
from broadcast.regions.service import get_village_or_raise
from broadcast.scheduling import quiet, service
from broadcast.scheduling.conflicts import campaign_conflicts
from broadcast.scheduling.models import CampaignStatus
from broadcast.scheduling.outputs import campaign_out, campaign_outs
from broadcast.scheduling.schemas import (
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
    ConflictReport,
    QuietHoursIn,
    QuietHoursOverview,
    RejectIn,
    SubmitOut,
    VillageQuietHoursOut,
)

router = APIRouter(tags=["campaigns"])


@router.get("/campaigns", response_model=Page[CampaignOut])
def list_campaigns(
    session: SessionDep,
    _: StaffUser,
    page: PageDep,
    status_: Annotated[CampaignStatus | None, Query(alias="status", description="按状态筛选")] = None,
    q: Annotated[str | None, Query(max_length=64, description="按名称或标识搜索")] = None,
) -> Page[CampaignOut]:
    total, rows = service.list_campaigns(session, params=page, status=status_, q=q)
    return Page(total=total, limit=page.limit, offset=page.offset, items=campaign_outs(session, rows))


@router.post("/campaigns", response_model=CampaignOut, status_code=status.HTTP_201_CREATED)
def create_campaign(
    data: CampaignCreate, session: SessionDep, _: ContentUser, actor: ActorDep
) -> CampaignOut:
    return campaign_out(session, service.create_campaign(session, data=data, actor=actor))


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign_id: int, session: SessionDep, _: StaffUser) -> CampaignOut:
    return campaign_out(session, service.get_campaign_or_raise(session, campaign_id))


@router.patch("/campaigns/{campaign_id}", response_model=CampaignOut)
def update_campaign(
    campaign_id: int, data: CampaignUpdate, session: SessionDep, _: ContentUser, actor: ActorDep
) -> CampaignOut:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    return campaign_out(session, service.update_campaign(session, campaign=campaign, data=data, actor=actor))


@router.delete("/campaigns/{campaign_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_campaign(campaign_id: int, session: SessionDep, _: ContentUser, actor: ActorDep) -> None:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    service.delete_campaign(session, campaign=campaign, actor=actor)


@router.post("/campaigns/{campaign_id}/submit", response_model=SubmitOut)
def submit_campaign(
    campaign_id: int, session: SessionDep, settings: SettingsDep, _: ContentUser, actor: ActorDep
) -> SubmitOut:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    service.submit_campaign(session, campaign=campaign, actor=actor)
    report = campaign_conflicts(session, campaign=campaign, settings=settings)
    return SubmitOut(campaign=campaign_out(session, campaign), conflicts=report)


@router.post("/campaigns/{campaign_id}/withdraw", response_model=CampaignOut)
def withdraw_campaign(campaign_id: int, session: SessionDep, _: ContentUser, actor: ActorDep) -> CampaignOut:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    return campaign_out(session, service.withdraw_campaign(session, campaign=campaign, actor=actor))


@router.post("/campaigns/{campaign_id}/approve", response_model=CampaignOut)
def approve_campaign(campaign_id: int, session: SessionDep, _: ContentUser, actor: ActorDep) -> CampaignOut:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    return campaign_out(session, service.approve_campaign(session, campaign=campaign, actor=actor))


@router.post("/campaigns/{campaign_id}/reject", response_model=CampaignOut)
def reject_campaign(
    campaign_id: int, data: RejectIn, session: SessionDep, _: ContentUser, actor: ActorDep
) -> CampaignOut:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    rejected = service.reject_campaign(session, campaign=campaign, actor=actor, reason=data.reason)
    return campaign_out(session, rejected)


@router.post("/campaigns/{campaign_id}/pause", response_model=CampaignOut)
def pause_campaign(campaign_id: int, session: SessionDep, _: ContentUser, actor: ActorDep) -> CampaignOut:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    return campaign_out(session, service.pause_campaign(session, campaign=campaign, actor=actor))


@router.post("/campaigns/{campaign_id}/resume", response_model=CampaignOut)
def resume_campaign(campaign_id: int, session: SessionDep, _: ContentUser, actor: ActorDep) -> CampaignOut:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    return campaign_out(session, service.resume_campaign(session, campaign=campaign, actor=actor))


@router.post("/campaigns/{campaign_id}/end", response_model=CampaignOut)
def end_campaign(campaign_id: int, session: SessionDep, _: ContentUser, actor: ActorDep) -> CampaignOut:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    return campaign_out(session, service.end_campaign(session, campaign=campaign, actor=actor))


@router.get("/campaigns/{campaign_id}/conflicts", response_model=ConflictReport)
def get_conflicts(
    campaign_id: int, session: SessionDep, settings: SettingsDep, _: StaffUser
) -> ConflictReport:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    return campaign_conflicts(session, campaign=campaign, settings=settings)


@router.get("/quiet-hours", response_model=QuietHoursOverview, tags=["quiet-hours"])
def get_quiet_hours(session: SessionDep, settings: SettingsDep, _: CurrentUser) -> QuietHoursOverview:
    return quiet.overview(session, settings=settings)


@router.put("/villages/{code}/quiet-hours", response_model=VillageQuietHoursOut, tags=["quiet-hours"])
def set_quiet_hours(
    code: str, data: QuietHoursIn, session: SessionDep, _: AdminUser, actor: ActorDep
) -> VillageQuietHoursOut:
    village = get_village_or_raise(session, code)
    return quiet.set_village_quiet_hours(session, village=village, data=data, actor=actor)


@router.delete("/villages/{code}/quiet-hours", status_code=status.HTTP_204_NO_CONTENT, tags=["quiet-hours"])
def clear_quiet_hours(code: str, session: SessionDep, _: AdminUser, actor: ActorDep) -> None:
    village = get_village_or_raise(session, code)
    quiet.clear_village_quiet_hours(session, village=village, actor=actor)
