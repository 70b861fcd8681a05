"""``broadcast clips``: upload and list recorded clips, and generate the built-in chimes."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from broadcast.auth.audit import CLI
from broadcast.config import get_settings
from broadcast.content import chimes, service
from broadcast.content.schemas import ClipCreate
from broadcast.content.store import get_store
from broadcast.db import make_engine, transaction
from broadcast.errors import BroadcastError
from broadcast.pagination import MAX_LIMIT, PageParams

clips_app = typer.Typer(help="录音素材 (content)", no_args_is_help=True)
console = Console(stderr=True)


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]失败：{exc}[/red]")
    return typer.Exit(1)


@clips_app.command("upload")
def upload(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="录音文件"),
    title: str = typer.Option(..., help="标题"),
    tag: list[str] = typer.Option([], help="标签，可重复"),
) -> None:
    """Upload a recording: checked, transcoded to the house format and stored."""
    settings = get_settings()
    try:
        data = ClipCreate(title=title, tags=tag)
        with transaction(make_engine(settings.effective_database_url)) as session:
            clip, created = service.create_clip(
                session,
                source=file,
                original_name=file.name,
                data=data,
                uploader_id=None,
                actor=CLI,
                settings=settings,
                store=get_store(settings),
            )
    except (BroadcastError, ValueError) as exc:
        raise _fail(exc) from exc
    verb = "已上传" if created else "该录音已上传过，未重复保存："
    console.print(f"{verb}素材 #{clip.id}「{clip.title}」，时长 {clip.duration_ms / 1000:.1f} 秒")


@clips_app.command("list")
def list_clips(
    q: str | None = typer.Option(None, help="按标题或原文件名搜索"),
    tag: str | None = typer.Option(None, help="按标签筛选"),
    limit: int = typer.Option(50, min=1, max=MAX_LIMIT, help="最多显示条数"),
) -> None:
    """List recorded clips, newest first."""
    settings = get_settings()
    with transaction(make_engine(settings.effective_database_url)) as session:
        total, clips = service.list_clips(session, q=q, tag=tag, params=PageParams(limit=limit, offset=0))
    table = Table("ID", "标题", "标签", "时长(秒)", "格式", "原文件名")
    for clip in clips:
        table.add_row(
            str(clip.id),
            clip.title,
            "、".join(clip.tags),
            f"{clip.duration_ms / 1000:.1f}",
            clip.source_format,
            clip.original_name,
        )
    Console().print(table)
    console.print(f"共 {total} 条")


@clips_app.command("chimes")
def ensure_chimes() -> None:
    """Generate the built-in chimes if missing, and list all chimes."""
    settings = get_settings()
    try:
        with transaction(make_engine(settings.effective_database_url)) as session:
            found = chimes.ensure_builtin_chimes(session, store=get_store(settings), settings=settings)
    except BroadcastError as exc:
        raise _fail(exc) from exc
    for chime in found:
        Console().print(
            f"#{chime.id} {chime.key} {chime.name} {chime.duration_ms / 1000:.1f} 秒 {chime.blob_sha256}"
        )
