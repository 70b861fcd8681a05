"""Playlists (节目单), their immutable revisions and rendered programs under /api/v1."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response, status

from broadcast.clock import utc_now
from broadcast.deps import ActorDep, ContentUser, SessionDep, SettingsDep
from broadcast.pagination import Page, PageDep
from broadcast.playlists import renders, service
from broadcast.playlists.models import Playlist, PlaylistRevision, RenderStatus
from broadcast.playlists.schemas import (
    ItemOut,
    PlaylistCreate,
    PlaylistDetail,
    PlaylistOut,
    RenderOut,
    RenderRequest,
    RevisionIn,
    RevisionOut,
)

router = APIRouter(tags=["playlists"])


def _revision_out(session: SessionDep, revision: PlaylistRevision) -> RevisionOut:
    items = [ItemOut.model_validate(item.model_dump()) for item in service.items_of(session, revision)]
    return RevisionOut.model_validate({**revision.model_dump(), "items": items})


def _detail(session: SessionDep, playlist: Playlist) -> PlaylistDetail:
    revision = _revision_out(session, service.current_revision(session, playlist))
    return PlaylistDetail.model_validate({**playlist.model_dump(), "revision": revision})


@router.post("/playlists", response_model=PlaylistDetail, status_code=status.HTTP_201_CREATED)
def create_playlist(
    data: PlaylistCreate, session: SessionDep, _: ContentUser, actor: ActorDep
) -> PlaylistDetail:
    return _detail(session, service.create_playlist(session, data=data, actor=actor))


@router.get("/playlists", response_model=Page[PlaylistOut])
def list_playlists(
    session: SessionDep,
    _: ContentUser,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=64, description="按名称或说明搜索")] = None,
) -> Page[PlaylistOut]:
    total, rows = service.list_playlists(session, q=q, params=page)
    items = [PlaylistOut.model_validate(row.model_dump()) for row in rows]
    return Page(total=total, limit=page.limit, offset=page.offset, items=items)


@router.get("/playlists/{playlist_id}", response_model=PlaylistDetail)
def get_playlist(playlist_id: int, session: SessionDep, _: ContentUser) -> PlaylistDetail:
    return _detail(session, service.get_playlist_or_raise(session, playlist_id))


@router.delete("/playlists/{playlist_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_playlist(playlist_id: int, session: SessionDep, _: ContentUser, actor: ActorDep) -> None:
    playlist = service.get_playlist_or_raise(session, playlist_id)
    service.delete_playlist(session, playlist=playlist, actor=actor)


@router.post(
    "/playlists/{playlist_id}/revisions", response_model=RevisionOut, status_code=status.HTTP_201_CREATED
)
def create_revision(
    playlist_id: int, data: RevisionIn, session: SessionDep, _: ContentUser, actor: ActorDep
) -> RevisionOut:
    playlist = service.get_playlist_or_raise(session, playlist_id)
    return _revision_out(session, service.create_revision(session, playlist=playlist, data=data, actor=actor))


@router.get("/playlists/{playlist_id}/revisions", response_model=list[RevisionOut])
def list_revisions(playlist_id: int, session: SessionDep, _: ContentUser) -> list[RevisionOut]:
    playlist = service.get_playlist_or_raise(session, playlist_id)
    return [_revision_out(session, r) for r in service.list_revisions(session, playlist=playlist)]


@router.get("/playlists/{playlist_id}/revisions/{number}", response_model=RevisionOut)
def get_revision(playlist_id: int, number: int, session: SessionDep, _: ContentUser) -> RevisionOut:
    playlist = service.get_playlist_or_raise(session, playlist_id)
    return _revision_out(session, service.get_revision_or_raise(session, playlist=playlist, number=number))


@router.post(
    "/playlists/{playlist_id}/revisions/{number}/renders",
    response_model=RenderOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"model": RenderOut, "description": "已合成完成的节目，直接返回"}},
)
def request_render(
    playlist_id: int,
    number: int,
    data: RenderRequest,
    request: Request,
    response: Response,
    tasks: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    _: ContentUser,
    actor: ActorDep,
) -> RenderOut:
    playlist = service.get_playlist_or_raise(session, playlist_id)
    revision = service.get_revision_or_raise(session, playlist=playlist, number=number)
    today = utc_now().astimezone(settings.tz).date()
    render = renders.request_render(session, revision=revision, data=data, actor=actor, today=today)
    if render.status == RenderStatus.done:
        response.status_code = status.HTTP_200_OK
    else:
        tasks.add_task(renders.wake_render_workers, request.app)
    return renders.render_out(session, render)


@router.get("/renders/{render_id}", response_model=RenderOut)
def get_render(render_id: int, session: SessionDep, _: ContentUser) -> RenderOut:
    return renders.render_out(session, renders.get_render_or_raise(session, render_id))
