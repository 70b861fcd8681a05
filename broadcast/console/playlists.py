"""节目单 (/console/playlists): the list, the editor that saves immutable revisions, the revision
history, and the render panel that polls a render until its program can be played."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response

from broadcast.auth.models import User
from broadcast.bulletins import service as bulletins
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.console import endpoints as endpoint_pages
from broadcast.console.access import require_section
from broadcast.console.library import actor_of, attempt, parse_form, respond, user_names
from broadcast.console.nav import section_named
from broadcast.console.templating import render
from broadcast.content import chimes
from broadcast.content import service as clips
from broadcast.content.store import get_store
from broadcast.deps import SessionDep, SettingsDep, village_scope
from broadcast.errors import BroadcastError, Invalid, NotFound
from broadcast.pagination import MAX_LIMIT, PageParams
from broadcast.playlists import renders, service
from broadcast.playlists.models import ItemKind, Playlist, PlaylistItem, Render, RenderStatus
from broadcast.playlists.schemas import MAX_ITEMS, PlaylistCreate, RenderRequest, RevisionIn
from broadcast.regions import service as regions

PLAYLISTS = section_named("playlists")
PlaylistsUser = Annotated[User, Depends(require_section(PLAYLISTS))]
PAGE_URL = "/console/playlists"
ALL = PageParams(limit=MAX_LIMIT, offset=0)
KIND_LABELS = {"clip": "录音", "bulletin": "文字稿", "chime": "提示音", "silence": "静音"}
STATUS_LABELS = {
    RenderStatus.queued: "排队中",
    RenderStatus.running: "正在生成",
    RenderStatus.done: "已完成",
    RenderStatus.failed: "失败",
}
LABELS = {
    "name": "名称",
    "description": "说明",
    "repeat": "重复次数",
    "silence_ms": "静音时长（毫秒）",
    "clip_id": "录音",
    "bulletin_id": "文字稿",
    "chime_id": "提示音",
    "village": "村（社区）",
    "date": "播出日期",
    "fields": "自定义字段",
}

router = APIRouter()


@dataclass(frozen=True)
class Catalog:
    """Everything an item can point at, with the names the editor and manifest show."""

    clips: list[Any]
    bulletins: list[Any]
    chimes: list[Any]

    def name(self, kind: str, ref: int | str | None) -> str:
        rows = {"clip": self.clips, "bulletin": self.bulletins, "chime": self.chimes}.get(kind, [])
        for row in rows:
            if str(row.id) == str(ref):
                return str(getattr(row, "title", None) or row.name)
        return f"#{ref}（已删除）"

    def duration_ms(self, kind: str, ref: int | str | None) -> int | None:
        for row in {"clip": self.clips, "chime": self.chimes}.get(kind, []):
            if str(row.id) == str(ref):
                return int(row.duration_ms)
        return None


def load_catalog(session: Session, settings: Settings) -> Catalog:
    return Catalog(
        clips=clips.list_clips(session, q=None, tag=None, params=ALL)[1],
        bulletins=bulletins.list_bulletins(session, params=ALL)[1],
        chimes=chimes.ensure_builtin_chimes(session, store=get_store(settings), settings=settings),
    )


@dataclass(frozen=True)
class Row:
    """One editor row as the form holds it; checked only when the revision is saved."""

    kind: str
    ref: str = ""
    silence_s: str = ""
    repeat: str = "1"

    @classmethod
    def of(cls, item: PlaylistItem) -> Row:
        ref = item.clip_id or item.bulletin_id or item.chime_id
        silence = f"{item.silence_ms / 1000:g}" if item.silence_ms is not None else ""
        return cls(kind=item.kind.value, ref=str(ref or ""), silence_s=silence, repeat=str(item.repeat))

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind, "repeat": self.repeat}
        if self.kind == ItemKind.silence:
            body["silence_ms"] = _milliseconds(self.silence_s)
        elif self.kind in KIND_LABELS:
            body[f"{self.kind}_id"] = self.ref
        return body


def _milliseconds(seconds: str) -> int | str:
    try:
        return round(float(seconds) * 1000)
    except ValueError:
        return seconds


@dataclass(frozen=True)
class Editor:
    rows: list[Row]
    repeat: str = "1"
    name: str = ""
    description: str = ""

    def revision(self) -> dict[str, Any]:
        return {"items": [row.payload() for row in self.rows], "repeat": self.repeat}


def _editor(
    item_kind: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    item_ref: Annotated[list[str], Form()] = [],  # noqa: B006
    item_silence_s: Annotated[list[str], Form()] = [],  # noqa: B006
    item_repeat: Annotated[list[str], Form()] = [],  # noqa: B006
    repeat: Annotated[str, Form()] = "1",
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Editor:
    fields = zip(item_kind, item_ref, item_silence_s, item_repeat, strict=False)
    rows = [Row(kind=k, ref=r, silence_s=s, repeat=n) for k, r, s, n in fields]
    return Editor(rows=rows, repeat=repeat, name=name.strip(), description=description.strip())


EditorDep = Annotated[Editor, Depends(_editor)]


def apply_op(rows: list[Row], op: str, picks: dict[str, str]) -> tuple[list[Row], str | None]:
    """The rows after one editor button (add:kind, up:i, down:i, remove:i), or why not."""
    action, _, arg = op.partition(":")
    if action == "add":
        return _add(rows, arg, picks)
    if not arg.isdigit() or int(arg) >= len(rows) or action not in ("up", "down", "remove"):
        return rows, "条目已变化，请刷新页面后重试"
    index = int(arg)
    if action == "remove":
        return rows[:index] + rows[index + 1 :], None
    other = index - 1 if action == "up" else index + 1
    if not 0 <= other < len(rows):
        return rows, None
    moved = list(rows)
    moved[index], moved[other] = moved[other], moved[index]
    return moved, None


def _add(rows: list[Row], kind: str, picks: dict[str, str]) -> tuple[list[Row], str | None]:
    if kind not in KIND_LABELS:
        return rows, "未知的条目类型"
    if len(rows) >= MAX_ITEMS:
        return rows, f"节目单最多 {MAX_ITEMS} 条，请先删除不需要的条目"
    if kind == ItemKind.silence:
        return [*rows, Row(kind=kind, silence_s=picks.get(kind, "").strip() or "2")], None
    if not picks.get(kind):
        return rows, f"请先在下拉框中选择要添加的{KIND_LABELS[kind]}"
    return [*rows, Row(kind=kind, ref=picks[kind])], None


def _rendered_ms(session: Session, revision_id: int | None) -> int | None:
    query = (
        select(Render.duration_ms)
        .where(Render.revision_id == revision_id, Render.status == RenderStatus.done)
        .order_by(col(Render.finished_at).desc())
    )
    return session.exec(query).first()


@dataclass(frozen=True)
class ListedPlaylist:
    playlist: Playlist
    items: int
    rendered_ms: int | None


class PlaylistQuery(BaseModel):
    q: str = Field(default="", max_length=64)


@router.get("/playlists")
def playlist_list(
    request: Request, session: SessionDep, user: PlaylistsUser, query: Annotated[PlaylistQuery, Query()]
) -> Response:
    total, rows = service.list_playlists(session, q=query.q.strip() or None, params=ALL)
    listed = []
    for playlist in rows:
        revision = service.current_revision(session, playlist)
        count = len(service.items_of(session, revision))
        listed.append(ListedPlaylist(playlist, count, _rendered_ms(session, revision.id)))
    return render(
        request, "playlists.html", user=user, section=PLAYLISTS, query=query, total=total, playlists=listed
    )


def _history(session: Session, playlist: Playlist) -> list[dict[str, Any]]:
    revisions = service.list_revisions(session, playlist=playlist)
    authors = user_names(session, (r.created_by for r in revisions))
    return [
        {
            "revision": r,
            "author": authors.get(r.created_by or 0, "—"),
            "count": len(service.items_of(session, r)),
        }
        for r in reversed(revisions)
    ]


def _render_panel(session: Session, settings: Settings, *, user: User, playlist: Playlist) -> dict[str, Any]:
    scope = village_scope(session, user)
    fields: set[str] = set()
    for revision in service.list_revisions(session, playlist=playlist):
        fields.update(name for b in renders.bulletins_of(session, revision) for name in b.custom_fields)
    return {
        "towns": regions.list_towns(session, scope=scope),
        "village_groups": endpoint_pages.village_groups(session, scope=scope, town=""),
        "today": utc_now().astimezone(settings.tz).date().isoformat(),
        "custom_fields": sorted(fields),
    }


def _editor_page(
    request: Request,
    session: Session,
    settings: Settings,
    *,
    user: User,
    playlist: Playlist | None,
    editor: Editor,
    error: BroadcastError | None = None,
    notice: str | None = None,
) -> Response:
    extra = {}
    if playlist is not None:
        extra = {
            "history": _history(session, playlist),
            **_render_panel(session, settings, user=user, playlist=playlist),
        }
    return respond(
        request,
        "playlists_editor.html",
        user=user,
        section=PLAYLISTS,
        error=error,
        notice=notice,
        playlist=playlist,
        editor=editor,
        catalog=load_catalog(session, settings),
        kind_labels=KIND_LABELS,
        max_items=MAX_ITEMS,
        **extra,
    )


@router.get("/playlists/new")
def new_playlist(
    request: Request, session: SessionDep, settings: SettingsDep, user: PlaylistsUser
) -> Response:
    editor = Editor(rows=[])
    return _editor_page(request, session, settings, user=user, playlist=None, editor=editor)


@router.post("/playlists/editor")
def editor_op(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: PlaylistsUser,
    editor: EditorDep,
    op: Annotated[str, Form()] = "",
    add_clip: Annotated[str, Form()] = "",
    add_bulletin: Annotated[str, Form()] = "",
    add_chime: Annotated[str, Form()] = "",
    add_silence: Annotated[str, Form()] = "",
) -> Response:
    picks = {"clip": add_clip, "bulletin": add_bulletin, "chime": add_chime, "silence": add_silence}
    rows, problem = apply_op(editor.rows, op, picks)
    return respond(
        request,
        "playlists_items.html",
        user=user,
        section=PLAYLISTS,
        error=Invalid(problem) if problem else None,
        editor=replace(editor, rows=rows),
        catalog=load_catalog(session, settings),
        kind_labels=KIND_LABELS,
        max_items=MAX_ITEMS,
    )


@router.post("/playlists")
def create_playlist(
    request: Request, session: SessionDep, settings: SettingsDep, user: PlaylistsUser, editor: EditorDep
) -> Response:
    body = {**editor.revision(), "name": editor.name, "description": editor.description}
    data = parse_form(PlaylistCreate, body, LABELS)
    result = (
        data
        if isinstance(data, Invalid)
        else attempt(
            session, lambda: service.create_playlist(session, data=data, actor=actor_of(request, user))
        )
    )
    if isinstance(result, BroadcastError):
        return _editor_page(request, session, settings, user=user, playlist=None, editor=editor, error=result)
    return RedirectResponse(f"{PAGE_URL}/{result.id}?saved=1", status_code=303)


@router.get("/playlists/{playlist_id}")
def edit_playlist(
    playlist_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: PlaylistsUser,
    saved: Annotated[int | None, Query(ge=1)] = None,
    base: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    playlist = service.get_playlist_or_raise(session, playlist_id)
    number = base or playlist.current_revision
    revision = service.get_revision_or_raise(session, playlist=playlist, number=number)
    rows = [Row.of(item) for item in service.items_of(session, revision)]
    editor = Editor(rows=rows, repeat=str(revision.repeat), name=playlist.name)
    notice = f"已保存为第 {saved} 版" if saved else None
    if base and base != playlist.current_revision:
        notice = f"已载入第 {base} 版的内容；保存后成为第 {playlist.current_revision + 1} 版"
    return _editor_page(
        request, session, settings, user=user, playlist=playlist, editor=editor, notice=notice
    )


@router.post("/playlists/{playlist_id}/revisions")
def save_revision(
    playlist_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: PlaylistsUser,
    editor: EditorDep,
) -> Response:
    playlist = service.get_playlist_or_raise(session, playlist_id)
    data = parse_form(RevisionIn, editor.revision(), LABELS)
    result = (
        data
        if isinstance(data, Invalid)
        else attempt(
            session,
            lambda: service.create_revision(
                session, playlist=playlist, data=data, actor=actor_of(request, user)
            ),
        )
    )
    if isinstance(result, BroadcastError):
        kept = service.get_playlist_or_raise(session, playlist_id)
        return _editor_page(request, session, settings, user=user, playlist=kept, editor=editor, error=result)
    return RedirectResponse(f"{PAGE_URL}/{playlist_id}?saved={result.number}", status_code=303)


@router.get("/playlists/{playlist_id}/revisions/{number}")
def view_revision(
    playlist_id: int,
    number: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: PlaylistsUser,
) -> Response:
    playlist = service.get_playlist_or_raise(session, playlist_id)
    revision = service.get_revision_or_raise(session, playlist=playlist, number=number)
    return render(
        request,
        "playlists_revision.html",
        user=user,
        section=PLAYLISTS,
        playlist=playlist,
        revision=revision,
        author=user_names(session, [revision.created_by]).get(revision.created_by or 0, "—"),
        rows=[Row.of(item) for item in service.items_of(session, revision)],
        catalog=load_catalog(session, settings),
        kind_labels=KIND_LABELS,
    )


def _place_name(session: Session, context: dict[str, Any]) -> str | None:
    """The village or town a render was made for, by name (the context holds codes)."""
    try:
        if code := context.get("village"):
            return regions.get_village_or_raise(session, code).name
        if code := context.get("town"):
            return regions.get_town_or_raise(session, code).name
    except NotFound:
        return str(code)
    return None


def _render_fragment(
    request: Request, session: Session, settings: Settings, *, user: User, result: Render | BroadcastError
) -> Response:
    if isinstance(result, BroadcastError):
        return respond(request, "playlists_render.html", user=user, section=PLAYLISTS, error=result)
    return respond(
        request,
        "playlists_render.html",
        user=user,
        section=PLAYLISTS,
        render=renders.render_out(session, result),
        place=_place_name(session, result.context),
        status_labels=STATUS_LABELS,
        kind_labels=KIND_LABELS,
        catalog=load_catalog(session, settings),
    )


@router.post("/playlists/{playlist_id}/renders")
def request_render(
    playlist_id: int,
    request: Request,
    tasks: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    user: PlaylistsUser,
    revision: Annotated[int, Form(ge=1)],
    village: Annotated[str, Form()] = "",
    date: Annotated[str, Form()] = "",
    field_name: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    field_value: Annotated[list[str], Form()] = [],  # noqa: B006
) -> Response:
    fields = {k: v for k, v in zip(field_name, field_value, strict=False) if v.strip()}
    body = {"village": village or None, "date": date or None, "fields": fields}
    data = parse_form(RenderRequest, body, LABELS)

    def enqueue(data: RenderRequest) -> Render:
        playlist = service.get_playlist_or_raise(session, playlist_id)
        chosen = service.get_revision_or_raise(session, playlist=playlist, number=revision)
        today = utc_now().astimezone(settings.tz).date()
        actor = actor_of(request, user)
        return renders.request_render(session, revision=chosen, data=data, actor=actor, today=today)

    result = data if isinstance(data, Invalid) else attempt(session, lambda: enqueue(data))
    if isinstance(result, Render) and result.status != RenderStatus.done:
        tasks.add_task(renders.wake_render_workers, request.app)
    return _render_fragment(request, session, settings, user=user, result=result)


@router.get("/playlists/renders/{render_id}")
def render_status(
    render_id: int, request: Request, session: SessionDep, settings: SettingsDep, user: PlaylistsUser
) -> Response:
    result = attempt(session, lambda: renders.get_render_or_raise(session, render_id))
    return _render_fragment(request, session, settings, user=user, result=result)
