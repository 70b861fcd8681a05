"""``broadcast simulate``: token files and the choices a person can get wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from broadcast.simulator.cli import simulate
from broadcast.simulator.fleet import read_tokens, ws_url

app = typer.Typer()
app.command()(simulate)


def test_reads_the_provision_csv(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("code,token\nEP1,bcd_a\nEP2, bcd_b \nEP3,\n", encoding="utf-8")
    assert read_tokens(path) == [("EP1", "bcd_a"), ("EP2", "bcd_b")]


def test_a_csv_without_a_token_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("code,name\nEP1,村部\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no token column"):
        read_tokens(path)


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/device/v1/ws"),
        ("https://gb.example.cn/", "wss://gb.example.cn/device/v1/ws"),
        ("https://gb.example.cn/city", "wss://gb.example.cn/city/device/v1/ws"),
    ],
)
def test_websocket_url_follows_the_server_url(server: str, expected: str) -> None:
    assert ws_url(server) == expected


def test_needs_exactly_one_token_source(tmp_path: Path) -> None:
    runner = CliRunner()
    neither = runner.invoke(app, ["--endpoints", "2"])
    assert neither.exit_code == 2
    assert "二选一" in neither.output
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("code,token\nEP1,bcd_a\n", encoding="utf-8")
    both = runner.invoke(app, ["--tokens", str(tokens), "--provision"])
    assert both.exit_code == 2


def test_a_missing_token_file_says_how_to_make_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--tokens", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "broadcast devices provision" in result.output
