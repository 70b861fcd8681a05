"""``broadcast keys list|rotate`` and ``broadcast devices provision``."""

from __future__ import annotations

import csv
import os
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from sqlmodel import Session, col, select

from broadcast.auth.audit import CLI
from broadcast.clock import utc_now
from broadcast.config import get_settings, with_secret_key
from broadcast.db import make_engine, transaction
from broadcast.dispatch import keys
from broadcast.dispatch.device_auth import provision_tokens
from broadcast.regions.models import Endpoint, EndpointStatus, Village

keys_app = typer.Typer(help="签名密钥 (signing keys)", no_args_is_help=True)
devices_app = typer.Typer(help="终端设备 (devices)", no_args_is_help=True)
console = Console(stderr=True)


def _date(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


@keys_app.command("list")
def list_keys() -> None:
    """Every signing key, one per line: kid, state, created, retired, public key (base64url)."""
    settings = with_secret_key(get_settings())
    with transaction(make_engine(settings.effective_database_url)) as session:
        now = utc_now()
        for key in keys.list_keys(session):
            published = keys.is_published(key, settings=settings, now=now)
            state = "签名中" if key.active else ("已停用，仍发布" if published else "已停用")
            typer.echo(
                f"{key.kid}\t{state}\t{_date(key.created_at)}\t{_date(key.retired_at)}\t{key.public_key}"
            )


@keys_app.command("rotate")
def rotate() -> None:
    """Make a new active key; the old one stays published until what it signed has expired."""
    settings = with_secret_key(get_settings())
    with transaction(make_engine(settings.effective_database_url)) as session:
        key = keys.rotate_key(session, settings=settings, actor=CLI)
    console.print(f"新的签名密钥 {key.kid} 已启用；旧密钥将继续发布 {settings.signature_ttl_s} 秒")


def _chosen(session: Session, *, everyone: bool, village_code: str | None) -> tuple[list[Endpoint], str]:
    if everyone == (village_code is not None):
        console.print("[red]请指定 --all（全部终端）或 --village 村（社区）代码，二选一[/red]")
        raise typer.Exit(2)
    query = select(Endpoint).where(Endpoint.status != EndpointStatus.disabled)
    if village_code is not None:
        village = session.exec(select(Village).where(Village.code == village_code)).first()
        if village is None:
            console.print(f"[red]村（社区）代码 {village_code} 不存在[/red]")
            raise typer.Exit(1)
        query = query.where(Endpoint.village_id == village.id)
    return list(session.exec(query.order_by(col(Endpoint.code))).all()), village_code or "all"


def _write_tokens(out: Path, pairs: list[tuple[str, str]]) -> None:
    """The secrets exist only in this file: readable by its owner alone."""
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["code", "token"])
        writer.writerows(pairs)


@devices_app.command("provision")
def provision(
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False, help="写出 code,token 的 CSV 文件"),
    everyone: bool = typer.Option(False, "--all", help="为全部（未停用的）终端签发"),
    village: str | None = typer.Option(None, "--village", help="只为该村（社区）的终端签发"),
) -> None:
    """Issue new device tokens in bulk (old ones are revoked) and write them to a CSV file."""
    settings = get_settings()
    with transaction(make_engine(settings.effective_database_url)) as session:
        endpoints, scope = _chosen(session, everyone=everyone, village_code=village)
        pairs = provision_tokens(session, endpoints=endpoints, scope=scope, actor=CLI)
        _write_tokens(out, pairs)
    console.print(f"已为 {len(pairs)} 个终端签发新令牌（旧令牌已吊销），写入 {out}")
