"""Target previews and saved groups (分组) for staff; village admins get 403 here."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from broadcast.deps import ActorDep, SessionDep, StaffUser
from broadcast.pagination import Page, PageDep
from broadcast.targets import service
from broadcast.targets.schemas import GroupCreate, GroupDetail, GroupOut, GroupUpdate, Selector, TargetPreview

router = APIRouter(tags=["targets"])


@router.post("/targets/preview", response_model=TargetPreview)
def preview(selector: Selector, session: SessionDep, _: StaffUser) -> TargetPreview:
    return service.preview(session, selector=selector)


@router.get("/groups", response_model=Page[GroupOut], tags=["groups"])
def list_groups(session: SessionDep, _: StaffUser, page: PageDep) -> Page[GroupOut]:
    total, groups = service.list_groups(session, params=page)
    items = [service.group_out(session, g) for g in groups]
    return Page(total=total, limit=page.limit, offset=page.offset, items=items)


@router.get("/groups/{group_id}", response_model=GroupDetail, tags=["groups"])
def get_group(group_id: int, session: SessionDep, _: StaffUser) -> GroupDetail:
    return service.group_detail(session, service.get_group_or_raise(session, group_id))


@router.post("/groups", response_model=GroupDetail, status_code=status.HTTP_201_CREATED, tags=["groups"])
def create_group(data: GroupCreate, session: SessionDep, _: StaffUser, actor: ActorDep) -> GroupDetail:
    return service.group_detail(session, service.create_group(session, data=data, actor=actor))


@router.patch("/groups/{group_id}", response_model=GroupDetail, tags=["groups"])
def update_group(
    group_id: int, data: GroupUpdate, session: SessionDep, _: StaffUser, actor: ActorDep
) -> GroupDetail:
    group = service.get_group_or_raise(session, group_id)
    return service.group_detail(session, service.update_group(session, group=group, data=data, actor=actor))


@router.delete("/groups/{group_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["groups"])
def delete_group(group_id: int, session: SessionDep, _: StaffUser, actor: ActorDep) -> Response:
    service.delete_group(session, group=service.get_group_or_raise(session, group_id), actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
