"""Use cases for bulletins (文字稿): write, list, preview, and render to audio for playlists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_
from sqlmodel import Session, col, select

from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.bulletins import templates, textnorm
from broadcast.bulletins.schemas import BulletinCreate, BulletinUpdate, PreviewIn
from broadcast.bulletins.templates import RenderContext
from broadcast.bulletins.tts.base import TTSError
from broadcast.bulletins.tts.cache import Speech, speak
from broadcast.bulletins.tts.registry import check_engine_name, engine_order, get_engine
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.content.models import AudioBlob, Bulletin
from broadcast.content.store import AudioStore
from broadcast.errors import Conflict, Invalid, NotFound
from broadcast.pagination import PageParams, paginate
from broadcast.playlists.models import Playlist, PlaylistItem, PlaylistRevision
from broadcast.regions.models import Town, Village

NOTHING_TO_READ = "没有可朗读的文字：文字稿只有标点或空白，请填写要播报的内容"


def _check_text(text: str, custom_fields: list[str], *, settings: Settings) -> None:
    if len(text) > settings.bulletin_max_chars:
        raise Invalid(
            f"文字稿过长：{len(text)} 个字符，上限 {settings.bulletin_max_chars} 个字符，请拆成几条文字稿",
            details={"length": len(text), "max_chars": settings.bulletin_max_chars},
        )
    used = templates.validate_template(text, custom_fields)
    if not used and not textnorm.has_readable(templates.literal_text(text)):
        raise Invalid(NOTHING_TO_READ)


def _check_engine(engine: str | None, voice: str | None, *, settings: Settings) -> None:
    if engine is not None:
        check_engine_name(engine)
    name = engine or next(iter(settings.tts_engines), None)
    if voice is None or name is None:
        return
    try:
        voices = [v.id for v in get_engine(name, settings=settings).voices()]
    except TTSError:
        return  # the engine cannot run here now; its voices are checked when it speaks
    if voice not in voices:
        raise Invalid(
            f"语音合成引擎 {name} 没有语音 {voice}；可用语音：{'、'.join(voices)}",
            details={"engine": name, "voice": voice, "available": voices},
        )


def create_bulletin(session: Session, *, data: BulletinCreate, actor: Actor, settings: Settings) -> Bulletin:
    _check_text(data.text, data.custom_fields, settings=settings)
    _check_engine(data.engine, data.voice, settings=settings)
    bulletin = Bulletin.model_validate({**data.model_dump(), "created_by": actor.user_id})
    session.add(bulletin)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="bulletin.create",
        entity_type="bulletin",
        entity_id=bulletin.id,
        after=audit.snapshot(bulletin),
    )
    return bulletin


def list_bulletins(
    session: Session, *, params: PageParams, q: str | None = None
) -> tuple[int, list[Bulletin]]:
    query = select(Bulletin).order_by(col(Bulletin.updated_at).desc(), col(Bulletin.id).desc())
    if q:
        pattern = f"%{q}%"
        query = query.where(or_(col(Bulletin.title).ilike(pattern), col(Bulletin.text).ilike(pattern)))
    return paginate(session, query, params)


def get_bulletin_or_raise(session: Session, bulletin_id: int) -> Bulletin:
    bulletin = session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise NotFound(f"文字稿 {bulletin_id} 不存在")
    return bulletin


def update_bulletin(
    session: Session, *, bulletin: Bulletin, data: BulletinUpdate, actor: Actor, settings: Settings
) -> Bulletin:
    before = audit.snapshot(bulletin)
    changes = data.model_dump(exclude_unset=True)
    for required in ("title", "text", "custom_fields", "rate"):
        if required in changes and changes[required] is None:
            raise Invalid(f"{required} 不能设为空")
    merged = {**(before or {}), **changes}
    _check_text(merged["text"], merged["custom_fields"], settings=settings)
    _check_engine(merged["engine"], merged["voice"], settings=settings)
    for name, value in changes.items():
        setattr(bulletin, name, value)
    bulletin.updated_at = utc_now()
    session.add(bulletin)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="bulletin.update",
        entity_type="bulletin",
        entity_id=bulletin.id,
        before=before,
        after=audit.snapshot(bulletin),
    )
    return bulletin


def playlists_using(session: Session, bulletin_id: int) -> list[str]:
    """Names of playlists with any revision (old ones included) that contains the bulletin."""
    query = (
        select(Playlist.name)
        .join(PlaylistRevision, col(PlaylistRevision.playlist_id) == col(Playlist.id))
        .join(PlaylistItem, col(PlaylistItem.revision_id) == col(PlaylistRevision.id))
        .where(PlaylistItem.bulletin_id == bulletin_id)
        .distinct()
        .order_by(Playlist.name)
    )
    return list(session.exec(query).all())


def delete_bulletin(session: Session, *, bulletin: Bulletin, actor: Actor) -> None:
    names = playlists_using(session, bulletin.id or 0)
    if names:
        raise Conflict(
            f"文字稿“{bulletin.title}”正被节目单使用，不能删除：{'、'.join(names)}。请先从这些节目单中移除",
            details={"playlists": names},
        )
    bulletin_id, before = bulletin.id, audit.snapshot(bulletin)
    session.delete(bulletin)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="bulletin.delete",
        entity_type="bulletin",
        entity_id=bulletin_id,
        before=before,
    )


@dataclass(frozen=True)
class Rendered:
    text: str
    spoken: str


def render_text(bulletin: Bulletin, context: RenderContext) -> Rendered:
    """The filled-in text and the text as it will be spoken; 422 if nothing would be read."""
    text = templates.render(bulletin.text, custom_fields=bulletin.custom_fields, context=context)
    spoken = textnorm.normalize(text)
    if not textnorm.has_readable(spoken):
        raise Invalid(NOTHING_TO_READ, details={"text": text})
    return Rendered(text=text, spoken=spoken)


def speak_bulletin(
    session: Session, *, bulletin: Bulletin, spoken: str, store: AudioStore, settings: Settings
) -> Speech:
    return speak(
        session,
        text=spoken,
        engines=engine_order(bulletin.engine, settings=settings),
        voice=bulletin.voice,
        rate=bulletin.rate,
        store=store,
        settings=settings,
    )


def render_bulletin_audio(
    session: Session, *, bulletin: Bulletin, context: RenderContext, store: AudioStore, settings: Settings
) -> AudioBlob:
    """The bulletin spoken for one context (village, town, date, field values), from the TTS cache
    when the same final text was spoken before. Used by the playlist renderer."""
    rendered = render_text(bulletin, context)
    return speak_bulletin(
        session, bulletin=bulletin, spoken=rendered.spoken, store=store, settings=settings
    ).blob


def _village_context(session: Session, code: str) -> tuple[str, str]:
    village = session.exec(select(Village).where(Village.code == code)).first()
    if village is None:
        raise Invalid(f"村（社区）代码 {code} 不存在", details={"village": code})
    town = session.get(Town, village.town_id)
    return village.name, town.name if town else ""


def preview_context(
    session: Session, *, bulletin: Bulletin, data: PreviewIn, settings: Settings
) -> RenderContext:
    unknown = sorted(set(data.fields) - set(bulletin.custom_fields))
    if unknown:
        raise Invalid(
            f"文字稿没有声明这些自定义字段：{'、'.join(unknown)}；"
            f"已声明：{'、'.join(bulletin.custom_fields) or '无'}",
            details={"unknown": unknown, "declared": bulletin.custom_fields},
        )
    village, town = _village_context(session, data.village) if data.village else (None, None)
    local_date: date = data.date or utc_now().astimezone(settings.tz).date()
    return RenderContext(village=village, town=town, local_date=local_date, fields=data.fields)


@dataclass(frozen=True)
class Preview:
    rendered: Rendered
    speech: Speech


def preview_bulletin(
    session: Session, *, bulletin: Bulletin, data: PreviewIn, store: AudioStore, settings: Settings
) -> Preview:
    context = preview_context(session, bulletin=bulletin, data=data, settings=settings)
    rendered = render_text(bulletin, context)
    speech = speak_bulletin(
        session, bulletin=bulletin, spoken=rendered.spoken, store=store, settings=settings
    )
    return Preview(rendered=rendered, speech=speech)
