"""``broadcast playlists``: list playlists and render a revision into a program, synchronously."""

from __future__ import annotations

import shutil
import time
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from broadcast.auth.audit import CLI
from broadcast.clock import utc_now
from broadcast.config import Settings, get_settings
from broadcast.content.store import get_store
from broadcast.db import make_engine, transaction
from broadcast.errors import BroadcastError
from broadcast.pagination import MAX_LIMIT, PageParams
from broadcast.playlists import jobs, renders, service
from broadcast.playlists.models import Render, RenderStatus
from broadcast.playlists.schemas import RenderRequest

playlists_app = typer.Typer(help="节目单 (playlists)", no_args_is_help=True)
console = Console(stderr=True)
WAIT_POLL_S = 0.5


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]失败：{message}[/red]")
    return typer.Exit(1)


@playlists_app.command("list")
def list_playlists(
    q: str | None = typer.Option(None, help="按名称或说明搜索"),
    limit: int = typer.Option(50, min=1, max=MAX_LIMIT, help="最多显示条数"),
) -> None:
    """List playlists with their newest revision number."""
    settings = get_settings()
    with transaction(make_engine(settings.effective_database_url)) as session:
        total, rows = service.list_playlists(session, q=q, params=PageParams(limit=limit, offset=0))
    table = Table("ID", "名称", "最新版本", "说明")
    for playlist in rows:
        table.add_row(str(playlist.id), playlist.name, str(playlist.current_revision), playlist.description)
    Console().print(table)
    console.print(f"共 {total} 条")


def _parse_fields(pairs: list[str]) -> dict[str, str]:
    fields = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise _fail(f"--field 须写作 名称=值，收到：{pair}")
        fields[key.strip()] = value
    return fields


def _request(
    engine: Engine, settings: Settings, *, playlist_id: int, number: int | None, data: RenderRequest
) -> Render:
    with transaction(engine) as session:
        playlist = service.get_playlist_or_raise(session, playlist_id)
        revision = service.get_revision_or_raise(
            session, playlist=playlist, number=number or playlist.current_revision
        )
        today = utc_now().astimezone(settings.tz).date()
        return renders.request_render(session, revision=revision, data=data, actor=CLI, today=today)


def _run_or_wait(engine: Engine, settings: Settings, render: Render) -> Render:
    """Run the render here, or wait for the worker that already claimed it."""
    render_id = render.id or 0
    with console.status("合成节目…") as status:
        if render.status == RenderStatus.queued and jobs.claim(engine, render_id):
            return jobs.execute(engine, render_id, settings=settings, progress=status.update)
        status.update("另一个进程正在合成，等待完成…")
        while render.status in (RenderStatus.queued, RenderStatus.running):
            time.sleep(WAIT_POLL_S)
            with transaction(engine) as session:
                render = renders.get_render_or_raise(session, render_id)
    return render


def _summary(render: Render) -> None:
    manifest = render.manifest or {}
    table = Table("#", "类型", "引用", "开始(秒)", "时长(秒)", "第几遍")
    for item in manifest.get("items", []):
        table.add_row(
            str(item["index"] + 1),
            item["kind"],
            "" if item["ref"] is None else str(item["ref"]),
            f"{item['start_ms'] / 1000:.3f}",
            f"{item['duration_ms'] / 1000:.3f}",
            f"{item['playlist_pass']}/{item['item_pass']}",
        )
    Console().print(table)
    program = manifest.get("program", {})
    console.print(
        f"渲染 #{render.id}：总时长 {(render.duration_ms or 0) / 1000:.3f} 秒，"
        f"响度 {program.get('loudness_lufs')} LUFS，真峰值 {program.get('true_peak_dbtp')} dBTP，"
        f"sha256 {render.blob_sha256}"
    )


@playlists_app.command("render")
def render_playlist(
    playlist_id: int = typer.Argument(..., help="节目单 ID"),
    revision: int | None = typer.Option(None, "--revision", min=1, help="版本号，默认最新版本"),
    village: str | None = typer.Option(None, help="村（社区）代码，文字稿中 {village}/{town} 取其名称"),
    on: str | None = typer.Option(None, "--date", help="播出日期 YYYY-MM-DD，默认今天"),
    field: list[str] = typer.Option([], help="自定义字段 名称=值，可重复"),
    out: Path | None = typer.Option(None, dir_okay=False, help="把节目文件另存到此路径"),
) -> None:
    """Render a playlist revision into one program file now, and print its manifest."""
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    try:
        day = date.fromisoformat(on) if on else None
        data = RenderRequest(village=village, date=day, fields=_parse_fields(field))
        render = _request(engine, settings, playlist_id=playlist_id, number=revision, data=data)
    except (BroadcastError, ValueError) as exc:
        raise _fail(getattr(exc, "message", str(exc))) from exc
    if render.status != RenderStatus.done:
        render = _run_or_wait(engine, settings, render)
    if render.status != RenderStatus.done:
        raise _fail(render.error or "节目合成失败")
    _summary(render)
    if out is not None:
        shutil.copyfile(get_store(settings).path_for(render.blob_sha256 or ""), out)
        console.print(f"节目文件已写入 {out}")
