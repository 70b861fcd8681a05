"""``broadcast bulletins``: hear a bulletin as a village will hear it."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import typer
from rich.console import Console

from broadcast.bulletins import service
from broadcast.bulletins.schemas import PreviewIn
from broadcast.config import get_settings
from broadcast.content.store import get_store
from broadcast.db import make_engine, transaction
from broadcast.errors import BroadcastError

bulletins_app = typer.Typer(help="文字稿 (bulletins)", no_args_is_help=True)
console = Console(stderr=True)


def _fields(pairs: list[str]) -> dict[str, str]:
    fields = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"自定义字段要写成 名称=值：{pair}", param_hint="--field")
        fields[name] = value
    return fields


@bulletins_app.command("preview")
def preview(
    bulletin_id: int = typer.Argument(..., help="文字稿编号"),
    village: str | None = typer.Option(None, help="村（社区）代码"),
    on: str | None = typer.Option(None, "--date", help="播出日期 YYYY-MM-DD，默认今天"),
    field: list[str] = typer.Option([], help="自定义字段的值，名称=值，可重复"),
    out: Path = typer.Option(..., help="保存试听音频（MP3）的文件"),
) -> None:
    """Render a bulletin for one village and save the audio."""
    settings = get_settings()
    store = get_store(settings)
    try:
        data = PreviewIn(village=village, date=date.fromisoformat(on) if on else None, fields=_fields(field))
        with transaction(make_engine(settings.effective_database_url)) as session:
            bulletin = service.get_bulletin_or_raise(session, bulletin_id)
            result = service.preview_bulletin(
                session, bulletin=bulletin, data=data, store=store, settings=settings
            )
    except (BroadcastError, ValueError) as exc:
        console.print(f"[red]试听失败：{exc}[/red]")
        raise typer.Exit(1) from exc
    shutil.copyfile(store.path_for(result.speech.blob.sha256), out)
    console.print(f"文字：{result.rendered.text}")
    console.print(f"读法：{result.rendered.spoken}")
    source = "缓存" if result.speech.cached else "新合成"
    console.print(
        f"已保存 {out}（{result.speech.blob.duration_ms / 1000:.1f} 秒，{result.speech.engine}/"
        f"{result.speech.voice}，{source}）"
    )
