"""文字稿 (/console/bulletins): the list, the create/edit form and the preview panel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from broadcast.auth.models import User
from broadcast.bulletins import service
from broadcast.bulletins.schemas import BulletinCreate, BulletinUpdate, PreviewIn
from broadcast.bulletins.templates import BUILTIN_FIELDS, RenderScope, render_scope
from broadcast.bulletins.tts.registry import describe_engines
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.console import endpoints as endpoint_pages
from broadcast.console.access import require_section
from broadcast.console.library import actor_of, attempt, parse_form, respond
from broadcast.console.nav import section_named
from broadcast.console.templating import is_htmx, render
from broadcast.content.models import Bulletin
from broadcast.content.schemas import normalise_tags
from broadcast.content.store import get_store
from broadcast.deps import SessionDep, SettingsDep, village_scope
from broadcast.errors import BroadcastError, Invalid
from broadcast.pagination import PageParams
from broadcast.regions import service as regions

BULLETINS = section_named("bulletins")
BulletinsUser = Annotated[User, Depends(require_section(BULLETINS))]
PAGE_URL = "/console/bulletins"
LIST_SIZE = 100
RATES = (50, 60, 70, 80, 90, 100, 110, 120, 130, 150, 180, 200)
SCOPE_LABELS = {
    RenderScope.once: "全市一次",
    RenderScope.per_town: "每个乡镇一次",
    RenderScope.per_village: "每个村一次",
}
LABELS = {
    "title": "标题",
    "text": "正文",
    "custom_fields": "自定义字段",
    "engine": "语音合成引擎",
    "voice": "语音",
    "rate": "语速",
    "village": "村（社区）",
    "date": "播出日期",
    "fields": "自定义字段的值",
}

router = APIRouter()


@dataclass(frozen=True)
class BulletinForm:
    """The form's fields as typed, so a refused form comes back exactly as it was."""

    title: str = ""
    text: str = ""
    custom_fields: str = ""
    engine: str = ""
    voice: str = ""
    rate: str = "100"

    @classmethod
    def of(cls, bulletin: Bulletin) -> BulletinForm:
        return cls(
            title=bulletin.title,
            text=bulletin.text,
            custom_fields="，".join(bulletin.custom_fields),
            engine=bulletin.engine or "",
            voice=bulletin.voice or "",
            rate=str(bulletin.rate),
        )

    def declared(self) -> list[str]:
        """The custom field names; braces are forgiven, as people copy them from the text."""
        return normalise_tags([self.custom_fields.replace("{", "").replace("}", "")])

    def payload(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "text": self.text,
            "custom_fields": self.declared(),
            "engine": self.engine or None,
            "voice": self.voice or None,
            "rate": self.rate,
        }


def _form(
    title: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    custom_fields: Annotated[str, Form()] = "",
    engine: Annotated[str, Form()] = "",
    voice: Annotated[str, Form()] = "",
    rate: Annotated[str, Form()] = "100",
) -> BulletinForm:
    return BulletinForm(
        title=title, text=text, custom_fields=custom_fields, engine=engine, voice=voice, rate=rate
    )


FormDep = Annotated[BulletinForm, Depends(_form)]


class BulletinQuery(BaseModel):
    q: str = Field(default="", max_length=64)


def _place_choices(session: Session, user: User) -> dict[str, Any]:
    scope = village_scope(session, user)
    return {
        "towns": regions.list_towns(session, scope=scope),
        "village_groups": endpoint_pages.village_groups(session, scope=scope, town=""),
    }


def _form_page(
    request: Request,
    session: Session,
    settings: Settings,
    *,
    user: User,
    bulletin: Bulletin | None,
    form: BulletinForm,
    error: BroadcastError | None = None,
    notice: str | None = None,
) -> Response:
    return respond(
        request,
        "bulletins_form.html",
        user=user,
        section=BULLETINS,
        error=error,
        notice=notice,
        bulletin=bulletin,
        form=form,
        declared=form.declared(),
        builtin_fields=BUILTIN_FIELDS,
        max_chars=settings.bulletin_max_chars,
        engines=describe_engines(settings=settings),
        engine_order="、".join(settings.tts_engines),
        rates=RATES,
        today=utc_now().astimezone(settings.tz).date().isoformat(),
        scope_label=SCOPE_LABELS[render_scope(bulletin.text)] if bulletin else None,
        **_place_choices(session, user),
    )


@router.get("/bulletins")
def bulletin_list(
    request: Request, session: SessionDep, user: BulletinsUser, query: Annotated[BulletinQuery, Query()]
) -> Response:
    total, rows = service.list_bulletins(
        session, params=PageParams(limit=LIST_SIZE, offset=0), q=query.q.strip() or None
    )
    context: dict[str, Any] = {
        "total": total,
        "bulletins": rows,
        "scopes": {b.id: SCOPE_LABELS[render_scope(b.text)] for b in rows},
        "shown": LIST_SIZE,
    }
    if is_htmx(request):
        return render(request, "bulletins_results.html", user=user, section=BULLETINS, **context)
    return render(request, "bulletins.html", user=user, section=BULLETINS, query=query, **context)


@router.get("/bulletins/new")
def new_bulletin(
    request: Request, session: SessionDep, settings: SettingsDep, user: BulletinsUser
) -> Response:
    return _form_page(request, session, settings, user=user, bulletin=None, form=BulletinForm())


@router.post("/bulletins")
def create_bulletin(
    request: Request, session: SessionDep, settings: SettingsDep, user: BulletinsUser, form: FormDep
) -> Response:
    data = parse_form(BulletinCreate, form.payload(), LABELS)
    result = (
        data
        if isinstance(data, Invalid)
        else attempt(
            session,
            lambda: service.create_bulletin(
                session, data=data, actor=actor_of(request, user), settings=settings
            ),
        )
    )
    if isinstance(result, BroadcastError):
        return _form_page(request, session, settings, user=user, bulletin=None, form=form, error=result)
    return RedirectResponse(f"{PAGE_URL}/{result.id}?saved=true", status_code=303)


@router.get("/bulletins/villages")
def village_choices(
    request: Request,
    session: SessionDep,
    user: BulletinsUser,
    town: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    groups = endpoint_pages.village_groups(session, scope=village_scope(session, user), town=town)
    return render(request, "bulletins_villages.html", user=user, village_groups=groups)


@router.get("/bulletins/{bulletin_id}")
def edit_bulletin(
    bulletin_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: BulletinsUser,
    saved: Annotated[bool, Query()] = False,
) -> Response:
    bulletin = service.get_bulletin_or_raise(session, bulletin_id)
    notice = "已保存，可在右侧试听预览" if saved else None
    form = BulletinForm.of(bulletin)
    return _form_page(request, session, settings, user=user, bulletin=bulletin, form=form, notice=notice)


@router.post("/bulletins/{bulletin_id}")
def update_bulletin(
    bulletin_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: BulletinsUser,
    form: FormDep,
) -> Response:
    bulletin = service.get_bulletin_or_raise(session, bulletin_id)
    data = parse_form(BulletinUpdate, form.payload(), LABELS)
    result = (
        data
        if isinstance(data, Invalid)
        else attempt(
            session,
            lambda: service.update_bulletin(
                session, bulletin=bulletin, data=data, actor=actor_of(request, user), settings=settings
            ),
        )
    )
    if isinstance(result, BroadcastError):
        saved = service.get_bulletin_or_raise(session, bulletin_id)
        return _form_page(request, session, settings, user=user, bulletin=saved, form=form, error=result)
    return RedirectResponse(f"{PAGE_URL}/{bulletin_id}?saved=true", status_code=303)


@router.post("/bulletins/{bulletin_id}/delete")
def delete_bulletin(
    bulletin_id: int, request: Request, session: SessionDep, settings: SettingsDep, user: BulletinsUser
) -> Response:
    bulletin = service.get_bulletin_or_raise(session, bulletin_id)
    result = attempt(
        session, lambda: service.delete_bulletin(session, bulletin=bulletin, actor=actor_of(request, user))
    )
    if isinstance(result, BroadcastError):
        kept = service.get_bulletin_or_raise(session, bulletin_id)
        form = BulletinForm.of(kept)
        return _form_page(request, session, settings, user=user, bulletin=kept, form=form, error=result)
    return RedirectResponse(PAGE_URL, status_code=303)


@dataclass(frozen=True)
class PreviewForm:
    village: str = ""
    date: str = ""

    def payload(self, names: list[str], values: list[str]) -> dict[str, Any]:
        return {
            "village": self.village or None,
            "date": self.date or None,
            "fields": dict(zip(names, values, strict=False)),
        }


@router.post("/bulletins/{bulletin_id}/preview")
def preview_bulletin(
    bulletin_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: BulletinsUser,
    village: Annotated[str, Form()] = "",
    date: Annotated[str, Form()] = "",
    field_name: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    field_value: Annotated[list[str], Form()] = [],  # noqa: B006
) -> Response:
    form = PreviewForm(village=village, date=date)
    data = parse_form(PreviewIn, form.payload(field_name, field_value), LABELS)
    result = (
        data
        if isinstance(data, Invalid)
        else attempt(
            session,
            lambda: service.preview_bulletin(
                session,
                bulletin=service.get_bulletin_or_raise(session, bulletin_id),
                data=data,
                store=get_store(settings),
                settings=settings,
            ),
        )
    )
    if isinstance(result, BroadcastError):
        return respond(request, "bulletins_preview.html", user=user, section=BULLETINS, error=result)
    return respond(request, "bulletins_preview.html", user=user, section=BULLETINS, preview=result)
