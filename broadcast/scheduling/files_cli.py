"""``broadcast schedules``: check, apply and export the city's calendar as files (``schedules/``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from broadcast.auth.audit import CLI
from broadcast.config import get_settings
from broadcast.db import make_engine, transaction
from broadcast.scheduling.files import Problem
from broadcast.scheduling.files_apply import Actors, Change, FileDiff
from broadcast.scheduling.files_export import export_folder
from broadcast.scheduling.files_sync import CLI_APPROVER, SyncResult, apply_folder, check_folder
from broadcast.scheduling.service import local_today

schedules_app = typer.Typer(help="宣传计划文件 (schedules/*.yaml)", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
_STYLE = {"+": "green", "~": "yellow", "=": "dim", "!": "red"}
_ON = typer.Option(None, "--on", help="参照日期 YYYY-MM-DD：按月日写的季节取包含它或其后的一季，默认今天")
_FOLDER = typer.Argument(Path("schedules"), help="宣传计划文件所在目录", file_okay=False)


def _today(on: str | None) -> date:
    if on is None:
        return local_today()
    try:
        return date.fromisoformat(on)
    except ValueError as exc:
        err.print(f"[red]--on {escape(on)} 不是 YYYY-MM-DD 格式的日期[/red]")
        raise typer.Exit(2) from exc


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        err.print(f"[red]✗[/red] {escape(str(problem))}")
    err.print(f"[red]共 {len(problems)} 个问题，未做任何改动。[/red]")


def _print_change(change: Change) -> None:
    style = _STYLE[change.mark]
    note = f"（{change.note}）" if change.note else ""
    out.print(
        f"  [{style}]{change.mark} {escape(change.what)}：{escape(change.name)}{escape(note)}[/{style}]"
    )
    for name, old, new in change.fields:
        out.print(f"      [{style}]{escape(name)}：{escape(old)} → {escape(new)}[/{style}]")


def _print_diffs(diffs: list[FileDiff]) -> None:
    for diff in diffs:
        mark = "~" if diff.changed else "="
        out.print(f"[bold {_STYLE[mark]}]{mark} {escape(diff.key)}[/bold {_STYLE[mark]}]")
        for change in diff.changes:
            _print_change(change)


def _summary(result: SyncResult, *, written: bool) -> None:
    changed = sum(diff.changed for diff in result.diffs)
    same = len(result.diffs) - changed
    verb = "已写入" if written else "将写入（未写入）"
    out.print(f"共 {len(result.diffs)} 个宣传计划：{changed} 个有改动{verb}，{same} 个无变化。")


@schedules_app.command("check")
def check(folder: Path = _FOLDER, on: str | None = _ON) -> None:
    """Check every file (YAML, schema, references, recurrence) against the database; writes nothing."""
    settings = get_settings()
    result = check_folder(
        make_engine(settings.effective_database_url), folder, today=_today(on), settings=settings
    )
    if result.problems:
        _print_problems(result.problems)
        raise typer.Exit(1)
    out.print(f"[green]✓ {len(result.diffs)} 个宣传计划文件全部通过检查。[/green]")


@schedules_app.command("apply")
def apply(
    folder: Path = _FOLDER,
    on: str | None = _ON,
    dry_run: bool = typer.Option(False, "--dry-run", help="只显示将要做的改动，不写入"),
    approve: bool = typer.Option(
        False, "--approve", help="批准文件中要求“已批准”的计划（以 cli --approve 身份审批，记入审计日志）"
    ),
) -> None:
    """Create or update campaigns by key and print the diff; applying twice changes nothing."""
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    today = _today(on)
    if dry_run:
        result = check_folder(engine, folder, today=today, settings=settings, approver=approve)
    else:
        actors = Actors(author=CLI, approver=CLI_APPROVER if approve else None)
        with err.status("应用宣传计划…") as status:
            result = apply_folder(
                engine, folder, actors=actors, today=today, settings=settings, progress=status.update
            )
    _print_diffs(result.diffs)
    if result.problems:
        _print_problems(result.problems)
        raise typer.Exit(1)
    _summary(result, written=not dry_run)


@schedules_app.command("export")
def export(
    folder: Path = typer.Argument(..., help="写入的目录（不存在则创建；同名文件会被覆盖）", file_okay=False),
    on: str | None = _ON,
) -> None:
    """Write every campaign of the database as a file that applies back to no change."""
    settings = get_settings()
    with transaction(make_engine(settings.effective_database_url)) as session:
        paths = export_folder(session, folder, today=_today(on))
    out.print(f"已导出 {len(paths)} 个宣传计划到 {escape(str(folder))}")
