"""The ``broadcast`` command line: serve, database, users, and the feature commands."""

from __future__ import annotations

import typer
from rich.console import Console

from broadcast import migrations
from broadcast.auth.cli import users_app
from broadcast.bulletins.cli import bulletins_app
from broadcast.config import get_settings
from broadcast.content.cli import clips_app
from broadcast.db import make_engine
from broadcast.demo.cli import seed_demo
from broadcast.dispatch.cli import devices_app, keys_app
from broadcast.playlists.cli import playlists_app
from broadcast.regions.cli import endpoints_app
from broadcast.scheduling.cli import scheduler_app
from broadcast.scheduling.files_cli import schedules_app
from broadcast.simulator.cli import simulate

app = typer.Typer(help="broadcast: 应急云广播内容调度", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="数据库 (database)", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(endpoints_app, name="endpoints")
app.add_typer(clips_app, name="clips")
app.add_typer(bulletins_app, name="bulletins")
app.add_typer(playlists_app, name="playlists")
app.add_typer(keys_app, name="keys")
app.add_typer(devices_app, name="devices")
app.add_typer(schedules_app, name="schedules")
app.add_typer(scheduler_app, name="scheduler")
app.command("simulate", help="模拟终端：按设备协议连接服务器、播放并回传")(simulate)
app.command("seed-demo", help="生成演示城市：29 个乡镇、278 个村（社区）、9,305 个终端和演示账号")(seed_demo)
console = Console(stderr=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="目标版本")) -> None:
    """Apply the database migrations."""
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    migrations.upgrade(engine, revision)
    heads = ", ".join(sorted(migrations.current_heads(engine)))
    console.print(f"数据库已升级到 {heads}：{engine.url.render_as_string()}")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="监听地址（默认取 BROADCAST_HOST）"),
    port: int | None = typer.Option(None, help="端口（默认取 BROADCAST_PORT）"),
    workers: int = typer.Option(1, min=1, help="工作进程数"),
) -> None:
    """启动服务：REST API、控制台、终端网关和后台任务。"""
    import uvicorn

    from broadcast.app import UnsafeConfiguration, check_production

    settings = get_settings()
    try:
        check_production(settings)
    except UnsafeConfiguration as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    uvicorn.run(
        "broadcast.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        # Device frames are small (docs/device-protocol.md); refuse bigger ones before reading them.
        ws_max_size=65536,
    )
