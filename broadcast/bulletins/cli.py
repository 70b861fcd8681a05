"""Command-line tools of the bulletins feature."""

from __future__ import annotations

import typer

bulletins_app = typer.Typer(help="文字稿 (bulletins)", no_args_is_help=True)
