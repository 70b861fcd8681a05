"""``broadcast endpoints import/export`` and ``broadcast seed-demo``."""

from __future__ import annotations

import typer

endpoints_app = typer.Typer(help="终端 (endpoints)", no_args_is_help=True)


def seed_demo() -> None:
    """Build the demo city."""
