"""素材库 (/console/library): clips with search and tag filter, players, upload, edit and delete,
and the built-in chimes.

Also what the content pages share: the acting user for the audit log, service calls whose
error becomes a message beside the form (with whatever they flushed rolled back), pydantic
errors in Chinese, and the duration filters.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from math import ceil
from typing import Annotated, Any, TypeVar, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session
from starlette.responses import Response

from broadcast.auth import service as auth_service
from broadcast.auth.audit import Actor
from broadcast.auth.models import User
from broadcast.config import Settings
from broadcast.console.access import require_section
from broadcast.console.nav import Section, section_named
from broadcast.console.templating import is_htmx, render, templates
from broadcast.content import chimes, service
from broadcast.content.models import Clip
from broadcast.content.schemas import ClipUpdate
from broadcast.content.store import get_store
from broadcast.content.upload import ReceivedClip, receive_clip
from broadcast.deps import SessionDep, SettingsDep
from broadcast.errors import BroadcastError, Invalid
from broadcast.pagination import PageParams

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# Set on a fragment that carries a form's error, so the page's htmx swaps it in despite the 4xx.
FORM_ERROR_HEADER = "X-Form-Error"
PAGE_SIZE = 50
PAGE_URL = "/console/library"
CLIPS_CHANGED = "clips-changed"

LIBRARY = section_named("library")
LibraryUser = Annotated[User, Depends(require_section(LIBRARY))]

_ERROR_TEXT = {
    "missing": "必须填写",
    "string_too_short": "不能为空",
    "string_too_long": "最多 {max_length} 个字符",
    "too_long": "最多 {max_length} 项",
    "greater_than_equal": "不能小于 {ge}",
    "less_than_equal": "不能大于 {le}",
    "int_parsing": "须为数字",
    "int_from_float": "须为整数",
    "float_parsing": "须为数字",
    "date_from_datetime_parsing": "日期格式不对，应如 2026-10-01",
    "date_parsing": "日期格式不对，应如 2026-10-01",
    "enum": "取值无效",
}


def mmss(duration_ms: int | None) -> str:
    if duration_ms is None:
        return "—"
    minutes, seconds = divmod(round(duration_ms / 1000), 60)
    return f"{minutes:02d}:{seconds:02d}"


def mmss_ms(offset_ms: int | None) -> str:
    if offset_ms is None:
        return "—"
    minutes, rest = divmod(offset_ms, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{minutes:02d}:{seconds:02d}.{millis:03d}"


templates.env.filters["mmss"] = mmss
templates.env.filters["mmss_ms"] = mmss_ms


def actor_of(request: Request, user: User) -> Actor:
    return Actor(user_id=user.id, name=user.username, address=request.client.host if request.client else None)


def attempt(session: Session, action: Callable[[], T]) -> T | BroadcastError:
    """The service call's result, or its error with everything it flushed rolled back."""
    try:
        return action()
    except BroadcastError as exc:
        session.rollback()
        return exc


def _where(loc: Iterable[int | str], labels: Mapping[str, str]) -> str:
    parts = [f"第 {part + 1} 条" if isinstance(part, int) else labels.get(part, "") for part in loc]
    return " ".join(part for part in parts if part)


def invalid_form(exc: ValidationError, labels: Mapping[str, str]) -> Invalid:
    """A form's validation errors in Chinese, each named by its field's label."""
    problems = []
    for error in exc.errors(include_url=False):
        template = _ERROR_TEXT.get(error["type"])
        text = template.format(**error.get("ctx", {})) if template else error["msg"]
        text = text.removeprefix("Value error, ")
        where = _where(error["loc"], labels)
        problems.append(f"{where}：{text}" if where else text)
    return Invalid("；".join(problems))


def parse_form(model: type[M], data: Mapping[str, Any], labels: Mapping[str, str]) -> M | Invalid:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        return invalid_form(exc, labels)


def respond(
    request: Request,
    name: str,
    *,
    user: User,
    section: Section,
    error: BroadcastError | None = None,
    **context: Any,
) -> Response:
    """A page or fragment; with an error, its status and message (shown beside the form)."""
    status_code = error.status_code if error else 200
    message = error.message if error else None
    response = render(
        request, name, user=user, section=section, status_code=status_code, error=message, **context
    )
    if error is not None:
        response.headers[FORM_ERROR_HEADER] = "1"
    return response


def user_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    return {i: auth_service.get_user_or_raise(session, i).display_name for i in set(ids) if i is not None}


class ClipQuery(BaseModel):
    q: str = Field(default="", max_length=128)
    tag: str = Field(default="", max_length=32)
    page: int = Field(default=1, ge=1, le=100_000)

    def url(self, page: int) -> str:
        params = {"q": self.q.strip(), "tag": self.tag.strip(), "page": page if page > 1 else None}
        kept = {key: value for key, value in params.items() if value}
        return f"{PAGE_URL}?{urlencode(kept)}" if kept else PAGE_URL


@dataclass(frozen=True)
class ClipListing:
    total: int
    items: list[Clip]
    uploaders: dict[int, str]
    tags: list[str]
    url: str
    page: int
    pages: int
    prev_url: str | None
    next_url: str | None


def list_page(session: Session, *, query: ClipQuery) -> ClipListing:
    params = PageParams(limit=PAGE_SIZE, offset=(query.page - 1) * PAGE_SIZE)
    total, clips = service.list_clips(
        session, q=query.q.strip() or None, tag=query.tag.strip() or None, params=params
    )
    pages = max(1, ceil(total / PAGE_SIZE))
    return ClipListing(
        total=total,
        items=clips,
        uploaders=user_names(session, (clip.uploaded_by for clip in clips)),
        tags=sorted({tag for clip in clips for tag in clip.tags}),
        url=query.url(query.page),
        page=query.page,
        pages=pages,
        prev_url=query.url(query.page - 1) if query.page > 1 else None,
        next_url=query.url(query.page + 1) if query.page < pages else None,
    )


@dataclass(frozen=True)
class UploadResult:
    """What the upload panel says after a submission, and the fields it keeps filled in."""

    notice: str | None = None
    title: str = ""
    tags: str = ""


async def received_upload(
    request: Request, settings: SettingsDep
) -> AsyncIterator[ReceivedClip | BroadcastError]:
    """The API's streaming upload, with its refusal (too large, not multipart…) kept for the form."""
    # The API's dependency is an async generator (it cleans up the temp file when closed).
    upload = cast(AsyncGenerator[ReceivedClip, None], receive_clip(request, settings))
    try:
        received = await anext(upload)
    except BroadcastError as exc:
        yield exc
        return
    try:
        yield received
    finally:
        await upload.aclose()


UploadDep = Annotated[ReceivedClip | BroadcastError, Depends(received_upload)]
router = APIRouter()


def _library_page(
    request: Request,
    session: Session,
    settings: Settings,
    *,
    user: User,
    query: ClipQuery,
    upload: UploadResult,
    error: BroadcastError | None = None,
) -> Response:
    found = chimes.ensure_builtin_chimes(session, store=get_store(settings), settings=settings)
    return respond(
        request,
        "library.html",
        user=user,
        section=LIBRARY,
        error=error,
        query=query,
        listing=list_page(session, query=query),
        chimes=found,
        upload=upload,
    )


@router.get("/library")
def library(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: LibraryUser,
    query: Annotated[ClipQuery, Query()],
) -> Response:
    if is_htmx(request):
        listing = list_page(session, query=query)
        fragment = render(request, "library_results.html", user=user, section=LIBRARY, listing=listing)
        fragment.headers["HX-Push-Url"] = listing.url
        return fragment
    return _library_page(request, session, settings, user=user, query=query, upload=UploadResult())


def _store_upload(
    request: Request, session: Session, settings: Settings, *, user: User, upload: ReceivedClip
) -> UploadResult | BroadcastError:
    result = attempt(
        session,
        lambda: service.create_clip(
            session,
            source=upload.path,
            original_name=upload.original_name,
            data=upload.data,
            uploader_id=user.id,
            actor=actor_of(request, user),
            settings=settings,
            store=get_store(settings),
        ),
    )
    if isinstance(result, BroadcastError):
        return result
    clip, created = result
    if created:
        return UploadResult(notice=f"已上传「{clip.title}」，时长 {mmss(clip.duration_ms)}")
    return UploadResult(notice=f"已存在相同录音：素材 #{clip.id}「{clip.title}」，未重复保存")


@router.post("/library/clips")
def upload_clip(
    request: Request, session: SessionDep, settings: SettingsDep, user: LibraryUser, upload: UploadDep
) -> Response:
    result: UploadResult | BroadcastError
    if isinstance(upload, BroadcastError):
        result = upload
    else:
        result = _store_upload(request, session, settings, user=user, upload=upload)
    error = result if isinstance(result, BroadcastError) else None
    panel = result if isinstance(result, UploadResult) else _kept_fields(upload)
    if not is_htmx(request):
        return _library_page(
            request, session, settings, user=user, query=ClipQuery(), upload=panel, error=error
        )
    response = respond(request, "library_upload.html", user=user, section=LIBRARY, error=error, upload=panel)
    if error is None:
        response.headers["HX-Trigger"] = CLIPS_CHANGED
    return response


def _kept_fields(upload: ReceivedClip | BroadcastError) -> UploadResult:
    if isinstance(upload, BroadcastError):
        return UploadResult()
    return UploadResult(title=upload.data.title, tags="，".join(upload.data.tags))


def _row(
    request: Request,
    session: Session,
    *,
    user: User,
    clip_id: int,
    editing: bool = False,
    error: BroadcastError | None = None,
    form: Mapping[str, str] | None = None,
) -> Response:
    clip = attempt(session, lambda: service.get_clip_or_raise(session, clip_id))
    if isinstance(clip, BroadcastError):
        return respond(request, "library_row.html", user=user, section=LIBRARY, error=clip, clip=None)
    return respond(
        request,
        "library_row_edit.html" if editing else "library_row.html",
        user=user,
        section=LIBRARY,
        error=error,
        clip=clip,
        uploaders=user_names(session, [clip.uploaded_by]),
        form=form or {"title": clip.title, "tags": "，".join(clip.tags)},
    )


@router.get("/library/clips/{clip_id}")
def clip_row(clip_id: int, request: Request, session: SessionDep, user: LibraryUser) -> Response:
    return _row(request, session, user=user, clip_id=clip_id)


@router.get("/library/clips/{clip_id}/edit")
def clip_edit_row(clip_id: int, request: Request, session: SessionDep, user: LibraryUser) -> Response:
    return _row(request, session, user=user, clip_id=clip_id, editing=True)


@router.post("/library/clips/{clip_id}")
def update_clip(
    clip_id: int,
    request: Request,
    session: SessionDep,
    user: LibraryUser,
    title: Annotated[str, Form()] = "",
    tags: Annotated[str, Form()] = "",
) -> Response:
    form = {"title": title, "tags": tags}
    data = parse_form(ClipUpdate, {"title": title.strip(), "tags": tags}, {"title": "标题", "tags": "标签"})
    if isinstance(data, Invalid):
        return _row(request, session, user=user, clip_id=clip_id, editing=True, error=data, form=form)
    result = attempt(
        session,
        lambda: service.update_clip(
            session,
            clip=service.get_clip_or_raise(session, clip_id),
            data=data,
            actor=actor_of(request, user),
        ),
    )
    if isinstance(result, BroadcastError):
        return _row(request, session, user=user, clip_id=clip_id, editing=True, error=result, form=form)
    return _row(request, session, user=user, clip_id=clip_id)


@router.post("/library/clips/{clip_id}/delete")
def delete_clip(clip_id: int, request: Request, session: SessionDep, user: LibraryUser) -> Response:
    result = attempt(
        session,
        lambda: service.delete_clip(
            session, clip=service.get_clip_or_raise(session, clip_id), actor=actor_of(request, user)
        ),
    )
    if isinstance(result, BroadcastError):
        return _row(request, session, user=user, clip_id=clip_id, error=result)
    return Response(status_code=200, headers={"HX-Trigger": CLIPS_CHANGED})
