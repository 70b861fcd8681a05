"""``broadcast users``: create accounts from the command line."""

from __future__ import annotations

import typer
from rich.console import Console

from broadcast.auth import service
from broadcast.auth.audit import CLI
from broadcast.auth.models import Role
from broadcast.auth.schemas import UserCreate
from broadcast.config import get_settings
from broadcast.db import make_engine, transaction
from broadcast.errors import BroadcastError

users_app = typer.Typer(help="账号 (users)", no_args_is_help=True)
console = Console(stderr=True)


@users_app.command("create")
def create(
    username: str = typer.Argument(..., help="登录名"),
    role: Role = typer.Option(..., help="角色"),
    display_name: str = typer.Option("", help="显示名（默认同登录名）"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
    village: list[str] = typer.Option([], help="村管理员可查看的村（社区）代码，可重复"),
) -> None:
    """Create a user account."""
    engine = make_engine(get_settings().effective_database_url)
    try:
        data = UserCreate(
            username=username,
            display_name=display_name or username,
            password=password,
            role=role,
            village_codes=village,
        )
        with transaction(engine) as session:
            user = service.create_user(session, data=data, actor=CLI)
    except (BroadcastError, ValueError) as exc:
        console.print(f"[red]创建失败：{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"已创建用户 {user.username}（{role.value}）")
