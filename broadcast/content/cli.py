"""Command-line tools of the content feature."""

from __future__ import annotations

import typer

clips_app = typer.Typer(help="录音素材 (content)", no_args_is_help=True)
