"""Command-line tools of the playlists feature."""

from __future__ import annotations

import typer

playlists_app = typer.Typer(help="节目单 (playlists)", no_args_is_help=True)
