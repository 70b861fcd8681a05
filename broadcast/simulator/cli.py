"""``broadcast simulate``: a fleet of virtual speakers against a running server."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.live import Live

from broadcast.simulator.fleet import Fleet, FleetConfig, raise_fd_limit, read_tokens

console = Console(stderr=True)

# Seconds the final drain waits for buffered events after the run ends.
DRAIN_S = 15.0


def provision_in_process(count: int) -> list[str]:
    """Issue tokens for the first ``count`` enabled endpoints, straight in the configured database.

    Only on the server host (it needs the database); it revokes those endpoints' current tokens,
    so never point it at a city whose real speakers are live.
    """
    from sqlmodel import col, select

    from broadcast.auth.audit import CLI
    from broadcast.config import get_settings
    from broadcast.db import make_engine, transaction
    from broadcast.dispatch.device_auth import provision_tokens
    from broadcast.regions.models import Endpoint, EndpointStatus

    engine = make_engine(get_settings().effective_database_url)
    try:
        with transaction(engine) as session:
            query = select(Endpoint).where(Endpoint.status != EndpointStatus.disabled)
            endpoints = list(session.exec(query.order_by(col(Endpoint.id)).limit(count)).all())
            pairs = provision_tokens(session, endpoints=endpoints, scope="simulate", actor=CLI)
    finally:
        engine.dispose()
    return [token for _code, token in pairs]


def _tokens(tokens_file: Path | None, provision: bool, count: int) -> list[str]:
    if provision == (tokens_file is not None):
        raise typer.BadParameter("请二选一：--tokens 令牌文件 或 --provision（在服务器本机直接签发）")
    if tokens_file is not None:
        if not tokens_file.exists():
            raise typer.BadParameter(
                f"令牌文件 {tokens_file} 不存在：先运行 broadcast devices provision --all --out {tokens_file}"
            )
        tokens = [token for _code, token in read_tokens(tokens_file)][:count]
    else:
        tokens = provision_in_process(count)
    if len(tokens) < count:
        console.print(f"[yellow]只有 {len(tokens)} 个令牌，按 {len(tokens)} 个终端模拟[/yellow]")
    if not tokens:
        raise typer.BadParameter("没有可用的终端令牌：请先创建终端并签发令牌")
    return tokens


async def _run(fleet: Fleet, duration: float | None) -> None:
    live_view = console.is_terminal
    began = time.monotonic()
    async with fleet:
        with Live(fleet.stats.table(title="模拟终端 simulate"), console=console, auto_refresh=False) as live:
            last_line = 0.0
            while duration is None or time.monotonic() - began < duration:
                await asyncio.sleep(1.0)
                fleet.refresh_gauges()
                if live_view:
                    live.update(fleet.stats.table(title="模拟终端 simulate"), refresh=True)
                elif time.monotonic() - last_line >= 10:
                    last_line = time.monotonic()
                    s = fleet.stats
                    console.print(
                        f"在线 {s.connected}/{s.endpoints} 已播 {s.played} 已报 {s.events_accepted} "
                        f"拒绝 {sum(s.refusals.values())}"
                    )
            left = await fleet.drain(timeout=DRAIN_S)
            if left:
                console.print(f"[yellow]{left} 条事件未能在 {DRAIN_S:.0f} 秒内上报[/yellow]")


def simulate(
    endpoints: int = typer.Option(100, "--endpoints", "-n", min=1, help="模拟终端数"),
    server: list[str] = typer.Option(
        ["http://127.0.0.1:8000"], "--server", help="服务器地址；可重复，终端轮流分配到各服务器"
    ),
    tokens: Path | None = typer.Option(None, "--tokens", help="broadcast devices provision 输出的令牌 CSV"),
    provision: bool = typer.Option(
        False, "--provision", help="在本机数据库直接为前 N 个终端签发新令牌（会吊销旧令牌）"
    ),
    speed: float = typer.Option(
        1.0, "--speed", min=0.001, help="播放时钟加速倍数（签名有效期仍按真实时间核验）"
    ),
    faults: float = typer.Option(0.0, "--faults", min=0.0, max=1.0, help="每个终端每分钟模拟断网的概率"),
    duration: float | None = typer.Option(
        None, "--duration", min=1, help="运行秒数（默认一直运行，Ctrl-C 结束）"
    ),
    connect_rate: float = typer.Option(400.0, "--connect-rate", min=1, help="每秒新建连接数"),
    max_pending: int = typer.Option(200, "--max-pending", min=1, help="启动时同时进行中的握手数上限"),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="音频缓存目录（按 sha256 存放，全体终端共享）"
    ),
    seed: int | None = typer.Option(None, "--seed", help="随机种子（断网与退避抖动可复现）"),
    report: Path | None = typer.Option(None, "--report", help="把最终统计写成 JSON 文件"),
) -> None:
    """Run N virtual speakers that speak only the documented device protocol (/device/v1)."""
    limit = raise_fd_limit()
    if endpoints + 64 > limit:
        console.print(f"[yellow]打开文件数上限为 {limit}，{endpoints} 个连接可能无法全部建立[/yellow]")
    config = FleetConfig(
        servers=server,
        cache_dir=cache_dir or Path(tempfile.gettempdir()) / "broadcast-simulator-audio",
        speed=speed,
        faults=faults,
        connect_rate=connect_rate,
        max_pending=max_pending,
        seed=seed,
    )
    fleet = Fleet(_tokens(tokens, provision, endpoints), config)
    try:
        asyncio.run(_run(fleet, duration))
    except KeyboardInterrupt:
        console.print("[yellow]已中断[/yellow]")
    fleet.refresh_gauges()
    Console(file=sys.stdout).print(fleet.stats.table(title="模拟结果 simulate report"))
    if report is not None:
        report.write_text(json.dumps(fleet.stats.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
