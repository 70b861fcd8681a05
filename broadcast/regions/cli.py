"""``broadcast endpoints import/export``."""

from __future__ import annotations

import typer

endpoints_app = typer.Typer(help="终端 (endpoints)", no_args_is_help=True)
