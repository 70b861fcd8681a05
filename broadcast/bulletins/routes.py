"""HTTP routes: bulletins (文字稿) with preview, and the TTS engine list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from broadcast.bulletins import service
from broadcast.bulletins.schemas import (
    BulletinCreate,
    BulletinOut,
    BulletinUpdate,
    EngineOut,
    PreviewIn,
    PreviewOut,
    VoiceOut,
)
from broadcast.bulletins.templates import fields_used, render_scope
from broadcast.bulletins.tts.registry import describe_engines
from broadcast.content.models import Bulletin
from broadcast.content.store import get_store
from broadcast.deps import ActorDep, ContentUser, SessionDep, SettingsDep
from broadcast.pagination import Page, PageDep

router = APIRouter(tags=["bulletins"])


def _out(bulletin: Bulletin) -> BulletinOut:
    return BulletinOut.model_validate(
        {
            **bulletin.model_dump(),
            "scope": render_scope(bulletin.text),
            "fields_used": fields_used(bulletin.text),
        }
    )


@router.get("/tts/engines", response_model=list[EngineOut])
def list_engines(_: ContentUser, settings: SettingsDep) -> list[EngineOut]:
    order = settings.tts_engines
    return [
        EngineOut(
            name=info.name,
            online=info.online,
            available=info.available,
            reason=info.reason,
            voices=[VoiceOut(id=v.id, name=v.name, language=v.language) for v in info.voices],
            default_order=order.index(info.name) if info.name in order else None,
        )
        for info in describe_engines(settings=settings)
    ]


@router.post("/bulletins", response_model=BulletinOut, status_code=status.HTTP_201_CREATED)
def create_bulletin(
    data: BulletinCreate, session: SessionDep, settings: SettingsDep, _: ContentUser, actor: ActorDep
) -> BulletinOut:
    return _out(service.create_bulletin(session, data=data, actor=actor, settings=settings))


@router.get("/bulletins", response_model=Page[BulletinOut])
def list_bulletins(
    session: SessionDep,
    _: ContentUser,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=64, description="按标题或内容搜索")] = None,
) -> Page[BulletinOut]:
    total, rows = service.list_bulletins(session, params=page, q=q)
    return Page(total=total, limit=page.limit, offset=page.offset, items=[_out(b) for b in rows])


@router.get("/bulletins/{bulletin_id}", response_model=BulletinOut)
def get_bulletin(bulletin_id: int, session: SessionDep, _: ContentUser) -> BulletinOut:
    return _out(service.get_bulletin_or_raise(session, bulletin_id))


@router.patch("/bulletins/{bulletin_id}", response_model=BulletinOut)
def update_bulletin(
    bulletin_id: int,
    data: BulletinUpdate,
    session: SessionDep,
    settings: SettingsDep,
    _: ContentUser,
    actor: ActorDep,
) -> BulletinOut:
    bulletin = service.get_bulletin_or_raise(session, bulletin_id)
    return _out(
        service.update_bulletin(session, bulletin=bulletin, data=data, actor=actor, settings=settings)
    )


@router.delete("/bulletins/{bulletin_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_bulletin(bulletin_id: int, session: SessionDep, _: ContentUser, actor: ActorDep) -> Response:
    service.delete_bulletin(
        session, bulletin=service.get_bulletin_or_raise(session, bulletin_id), actor=actor
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/bulletins/{bulletin_id}/preview", response_model=PreviewOut)
def preview_bulletin(
    bulletin_id: int, data: PreviewIn, session: SessionDep, settings: SettingsDep, _: ContentUser
) -> PreviewOut:
    bulletin = service.get_bulletin_or_raise(session, bulletin_id)
    preview = service.preview_bulletin(
        session, bulletin=bulletin, data=data, store=get_store(settings), settings=settings
    )
    blob = preview.speech.blob
    return PreviewOut(
        text=preview.rendered.text,
        spoken_text=preview.rendered.spoken,
        audio_sha256=blob.sha256,
        audio_url=f"/api/v1/audio/{blob.sha256}",
        duration_ms=blob.duration_ms,
        engine=preview.speech.engine,
        voice=preview.speech.voice,
        cached=preview.speech.cached,
    )
