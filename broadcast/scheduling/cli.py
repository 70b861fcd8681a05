"""``broadcast scheduler``: run the scheduler process; ``materialize`` once; ``status`` of the lease."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import typer
from rich.console import Console

from broadcast.config import get_settings
from broadcast.db import make_engine, transaction
from broadcast.errors import BroadcastError
from broadcast.scheduling.leader import LEADER_LEASE
from broadcast.scheduling.materialize import MaterializeReport, materialize
from broadcast.scheduling.models import Lease
from broadcast.scheduling.refresh import materialized_through, pending_refresh
from broadcast.scheduling.scheduler import Scheduler

scheduler_app = typer.Typer(
    help="调度进程 (scheduler)：不带子命令时运行调度进程（同一时间只有一个生效，其余待命）",
    invoke_without_command=True,
)
console = Console(stderr=True)


@scheduler_app.callback()
def run(ctx: typer.Context) -> None:
    """Run the scheduler until SIGINT/SIGTERM; stand by while another one holds the lease."""
    if ctx.invoked_subcommand is not None:
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    scheduler = Scheduler(engine=make_engine(settings.effective_database_url), settings=settings)
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        console.print(f"收到信号 {signal.Signals(signum).name}，正在停止调度进程……")
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    lock = "Redis" if settings.redis_url else "数据库"
    console.print(
        f"调度进程 {scheduler.lock.holder} 已启动（{lock}租约 {scheduler.lock.name}）；未取得租约时待命。"
    )
    scheduler.start()
    try:
        stopping.wait()
    finally:
        scheduler.stop()
    console.print("调度进程已停止，租约已释放。")


def _print_report(report: MaterializeReport) -> None:
    console.print(
        f"播出单已生成：{report.window_start:%Y-%m-%d %H:%M} 至 "
        f"{report.window_end:%Y-%m-%d %H:%M}（本地时间），"
        f"{report.campaigns} 个计划、{report.classes} 类终端、{report.endpoints} 个终端；"
        f"计划播出 {report.planned} 条、不播 {report.dropped} 条；"
        f"新增 {report.inserted}、更新 {report.updated}、删除 {report.deleted}、未变 {report.unchanged}，"
        f"已开始的保留 {report.kept_past} 条"
    )
    for item in report.skipped:
        console.print(f"[yellow]跳过计划 #{item.campaign_id}“{item.name}”：{item.reason}[/yellow]")


@scheduler_app.command("materialize")
def materialize_once(
    horizon_h: int | None = typer.Option(None, "--horizon-h", min=1, max=24 * 14, help="提前生成的小时数"),
) -> None:
    """Materialize the rundowns now, once (idempotent: safe while a scheduler runs)."""
    settings = get_settings()
    try:
        with transaction(make_engine(settings.effective_database_url)) as session:
            report = materialize(session, settings=settings, horizon_h=horizon_h)
    except BroadcastError as exc:
        console.print(f"[red]失败：{exc.message}[/red]")
        raise typer.Exit(1) from exc
    _print_report(report)


@scheduler_app.command("status")
def status() -> None:
    """Who holds the leader lease (database lease only), and how far rundowns are materialized."""
    settings = get_settings()
    tz = settings.tz
    with transaction(make_engine(settings.effective_database_url)) as session:
        lease = session.get(Lease, LEADER_LEASE)
        through = materialized_through(session)
        pending = pending_refresh(session)
    if settings.redis_url:
        console.print(f"租约在 Redis（{LEADER_LEASE}）")
    elif lease is None:
        console.print("没有调度进程持有租约")
    else:
        console.print(f"租约持有者：{lease.holder}，到期 {lease.expires_at.astimezone(tz):%Y-%m-%d %H:%M:%S}")
    console.print(
        "尚未生成播出单" if through is None else f"播出单已生成到 {through.astimezone(tz):%Y-%m-%d %H:%M}"
    )
    if pending is not None:
        console.print(
            f"有待处理的刷新请求（{pending.holder}，自 {pending.expires_at.astimezone(tz):%H:%M:%S} 起）"
        )
