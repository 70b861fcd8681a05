"""``broadcast seed-demo``: the demo city."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from broadcast import migrations
from broadcast.auth.models import ROLE_LABELS
from broadcast.config import Settings, get_settings
from broadcast.db import make_engine, transaction
from broadcast.demo.city import DemoSummary, build_demo_city
from broadcast.errors import BroadcastError
from broadcast.scheduling.files_sync import apply_demo_schedules
from broadcast.scheduling.service import local_today

console = Console()
errors = Console(stderr=True)


def _build(settings: Settings, seed: int) -> DemoSummary:
    engine = make_engine(settings.effective_database_url)
    migrations.upgrade(engine)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=True) as progress:
        task = progress.add_task("生成演示城市", total=None)

        def report(step: str, done: int, total: int) -> None:
            progress.update(task, description=f"写入{step}", completed=done, total=total)

        with transaction(engine) as session:
            summary = build_demo_city(session, seed=seed, progress=report)
    engine.dispose()
    return summary


def _logins_table(summary: DemoSummary) -> Table:
    table = Table(title="演示账号")
    for column in ("角色", "用户名", "密码", "可见范围"):
        table.add_column(column, no_wrap=True)
    for login in summary.logins:
        password = login.password if login.password_works else "（已被修改）"
        table.add_row(ROLE_LABELS[login.role], login.username, password, login.scope)
    return table


def _addresses(settings: Settings) -> str:
    base = f"http://{settings.host}:{settings.port}"
    return f"控制台：{base}/console\nAPI 文档：{base}/docs"


def _schedules(settings: Settings) -> None:
    engine = make_engine(settings.effective_database_url)
    with errors.status("应用 schedules/ 中的宣传计划（首次需合成节目，约几分钟）…") as status:
        result = apply_demo_schedules(engine, today=local_today(), settings=settings, progress=status.update)
    engine.dispose()
    for problem in result.problems:
        errors.print(f"[red]宣传计划：{problem}[/red]")
    changed = sum(diff.changed for diff in result.diffs)
    console.print(f"宣传计划：{len(result.diffs)} 个（本次新建或更新 {changed} 个），见 schedules/")
    if result.problems:
        raise typer.Exit(1)


def seed_demo(
    seed: int = typer.Option(2026, help="随机种子：同一种子总是生成同一座城市"),
    schedules: bool = typer.Option(
        True, "--schedules/--no-schedules", help="同时应用 schedules/ 中的全年宣传计划"
    ),
) -> None:
    """Build the demo city (29 towns, 278 villages, 9,305 endpoints, a user per role) and its campaigns."""
    settings = get_settings()
    if settings.mode == "production":
        errors.print(
            "[red]拒绝在生产模式（BROADCAST_MODE=production）下生成演示数据：演示账号的密码是公开的。[/red]"
        )
        raise typer.Exit(2)
    try:
        summary = _build(settings, seed)
    except BroadcastError as exc:
        errors.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    if summary.created:
        console.print(f"已生成演示城市（种子 {summary.seed}）：", end="")
    else:
        console.print("数据库中已有演示城市，未做改动：", end="")
    console.print(
        f"{summary.towns} 个乡镇/街道，{summary.villages} 个村（社区），{summary.endpoints} 个终端"
        f"（离线 {summary.offline}，故障 {summary.fault}）"
    )
    if schedules:
        _schedules(settings)
    console.print(_logins_table(summary))
    console.print(_addresses(settings))
