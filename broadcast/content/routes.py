"""HTTP routes of the content feature: clips, chimes and stored audio files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import FileResponse

from broadcast.content import chimes, service
from broadcast.content.audio import HOUSE_MEDIA_TYPE
from broadcast.content.models import Chime, Clip
from broadcast.content.schemas import ChimeOut, ClipOut, ClipUpdate, ClipUploadOut, audio_url
from broadcast.content.store import get_store
from broadcast.content.upload import UPLOAD_OPENAPI, ReceivedClipDep
from broadcast.deps import ActorDep, ContentUser, CurrentUser, SessionDep, SettingsDep
from broadcast.pagination import Page, PageDep

router = APIRouter(tags=["content"])


def clip_out(clip: Clip) -> ClipOut:
    return ClipOut.model_validate({**clip.model_dump(), "audio_url": audio_url(clip.blob_sha256)})


def chime_out(chime: Chime) -> ChimeOut:
    return ChimeOut.model_validate({**chime.model_dump(), "audio_url": audio_url(chime.blob_sha256)})


@router.post(
    "/clips",
    response_model=ClipUploadOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "同一录音已上传过：返回已有素材，未重复保存"}},
    openapi_extra=UPLOAD_OPENAPI,
)
def upload_clip(
    user: ContentUser,
    upload: ReceivedClipDep,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    response: Response,
) -> ClipUploadOut:
    clip, created = service.create_clip(
        session,
        source=upload.path,
        original_name=upload.original_name,
        data=upload.data,
        uploader_id=user.id,
        actor=actor,
        settings=settings,
        store=get_store(settings),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    message = "已上传" if created else f"该录音已上传过（素材 #{clip.id}「{clip.title}」），未重复保存"
    return ClipUploadOut.model_validate(
        {**clip_out(clip).model_dump(), "created": created, "message": message}
    )


@router.get("/clips", response_model=Page[ClipOut])
def list_clips(
    session: SessionDep,
    _: ContentUser,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=128, description="按标题或原文件名搜索")] = None,
    tag: Annotated[str | None, Query(max_length=32, description="按标签筛选")] = None,
) -> Page[ClipOut]:
    total, clips = service.list_clips(session, q=q, tag=tag, params=page)
    return Page(total=total, limit=page.limit, offset=page.offset, items=[clip_out(c) for c in clips])


@router.get("/clips/{clip_id}", response_model=ClipOut)
def get_clip(clip_id: int, session: SessionDep, _: ContentUser) -> ClipOut:
    return clip_out(service.get_clip_or_raise(session, clip_id))


@router.patch("/clips/{clip_id}", response_model=ClipOut)
def update_clip(
    clip_id: int, data: ClipUpdate, session: SessionDep, _: ContentUser, actor: ActorDep
) -> ClipOut:
    clip = service.get_clip_or_raise(session, clip_id)
    return clip_out(service.update_clip(session, clip=clip, data=data, actor=actor))


@router.delete("/clips/{clip_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_clip(clip_id: int, session: SessionDep, _: ContentUser, actor: ActorDep) -> None:
    service.delete_clip(session, clip=service.get_clip_or_raise(session, clip_id), actor=actor)


@router.get("/chimes", response_model=list[ChimeOut])
def list_chimes(session: SessionDep, settings: SettingsDep, _: ContentUser) -> list[ChimeOut]:
    found = chimes.ensure_builtin_chimes(session, store=get_store(settings), settings=settings)
    return [chime_out(c) for c in found]


@router.get(
    "/audio/{sha256}",
    response_class=FileResponse,
    responses={
        200: {"content": {HOUSE_MEDIA_TYPE: {}}, "description": "音频文件（支持 Range）"},
        206: {"description": "部分内容（Range）"},
        304: {"description": "未修改（If-None-Match 与 ETag 相同）"},
        416: {"description": "Range 超出文件长度"},
    },
)
def get_audio(
    sha256: str,
    session: SessionDep,
    settings: SettingsDep,
    _: CurrentUser,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    _blob, path = service.get_blob_or_raise(session, sha256, store=get_store(settings))
    etag = f'"{sha256}"'
    # Content-addressed: the bytes behind a hash never change, so caches may keep them forever.
    headers = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}
    if service.etag_matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return FileResponse(path, media_type=HOUSE_MEDIA_TYPE, headers=headers)
