"""``broadcast endpoints import/export``: the same CSV format and policy as the API."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from broadcast.auth.audit import CLI
from broadcast.config import get_settings
from broadcast.db import make_engine, transaction
from broadcast.errors import BroadcastError
from broadcast.regions import csv_io
from broadcast.regions.schemas import EndpointFilters, ImportResult

endpoints_app = typer.Typer(help="终端 (endpoints)", no_args_is_help=True)
console = Console(stderr=True)


def _report_errors(exc: BroadcastError) -> None:
    console.print(f"[red]{exc.message}[/red]")
    details = exc.details if isinstance(exc.details, dict) else {}
    for error in details.get("errors", []):
        console.print(f"  {error['message']}")


def _run_import(data: bytes, *, partial: bool) -> ImportResult:
    engine = make_engine(get_settings().effective_database_url)
    columns = (TextColumn("写入终端"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task("import", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        with transaction(engine) as session:
            return csv_io.import_endpoints(session, data=data, partial=partial, actor=CLI, progress=advance)


@endpoints_app.command("import")
def import_file(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="CSV 文件"),
    partial: bool = typer.Option(False, "--partial", help="只导入正确的行，并报告错误行"),
) -> None:
    """Create or update endpoints from a CSV file (nothing is written if a row is bad, unless --partial)."""
    try:
        result = _run_import(file.read_bytes(), partial=partial)
    except BroadcastError as exc:
        _report_errors(exc)
        raise typer.Exit(1) from exc
    for error in result.errors:
        console.print(f"[yellow]跳过 {error.message}[/yellow]")
    console.print(
        f"导入完成：新建 {result.created}，更新 {result.updated}，未变 {result.unchanged}，"
        f"错误 {len(result.errors)}"
    )


def _export(filters: EndpointFilters, target: TextIO) -> int:
    engine = make_engine(get_settings().effective_database_url)
    with console.status("正在导出终端…"), transaction(engine) as session:
        return csv_io.write_csv(session, filters=filters, scope=None, out=target)


@endpoints_app.command("export")
def export_file(
    out: Path | None = typer.Option(None, "--out", "-o", help="输出文件（默认写到标准输出）"),
    town: str | None = typer.Option(None, help="乡镇代码"),
    village: str | None = typer.Option(None, help="村（社区）代码"),
    tag: str | None = typer.Option(None, help="标签"),
    status: str | None = typer.Option(None, help="状态：online、offline、fault、disabled"),
    q: str | None = typer.Option(None, help="代码或名称包含的文字"),
) -> None:
    """Write endpoints as CSV, in the import format."""
    filters = EndpointFilters(town=town, village=village, tag=tag, status=status, q=q)
    try:
        if out is None:
            buffer = io.StringIO()
            count = _export(filters, buffer)
            typer.echo(buffer.getvalue(), nl=False)
        else:
            with out.open("w", encoding="utf-8", newline="") as target:
                count = _export(filters, target)
    except BroadcastError as exc:
        _report_errors(exc)
        raise typer.Exit(1) from exc
    console.print(f"已导出 {count} 个终端" + (f"到 {out}" if out else ""))
