from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from typer.testing import CliRunner

from broadcast.auth.models import AuditEntry
from broadcast.cli import app
from broadcast.config import Settings
from broadcast.regions import cli
from broadcast.regions.models import Endpoint
from tests.builders import City

runner = CliRunner()


@pytest.fixture
def use_test_database(monkeypatch: pytest.MonkeyPatch, engine: Engine, settings: Settings) -> None:
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli, "make_engine", lambda _url: engine)


@pytest.mark.usefixtures("use_test_database")
def test_export_edit_import(tmp_path: Path, session: Session, city: City) -> None:
    out = tmp_path / "endpoints.csv"
    exported = runner.invoke(app, ["endpoints", "export", "--out", str(out), "--town", city.towns[0].code])
    assert exported.exit_code == 0, exported.output
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 7
    lines.append(f"CLI-1,命令行导入,{city.villages[0].code},market,,,,")
    out.write_text("\n".join(lines), encoding="utf-8")
    imported = runner.invoke(app, ["endpoints", "import", str(out)])
    assert imported.exit_code == 0, imported.output
    assert "新建 1，更新 0，未变 6" in imported.output
    assert session.exec(select(func.count()).select_from(Endpoint)).one() == 13
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "endpoint.import")).one()
    assert entry.actor_name == "cli"


@pytest.mark.usefixtures("use_test_database")
def test_bad_file_fails_unless_partial(tmp_path: Path, session: Session, city: City) -> None:
    bad = tmp_path / "bad.csv"
    village = city.villages[0].code
    bad.write_text(
        "code,name,village_code,tags,latitude,longitude,volume,status\n"
        f"GOOD-1,好,{village},,,,,\nBAD-1,坏,{village},,,200,,\n",
        encoding="utf-8",
    )
    refused = runner.invoke(app, ["endpoints", "import", str(bad)])
    assert refused.exit_code == 1
    assert "第 3 行 longitude" in refused.output
    assert session.exec(select(Endpoint).where(Endpoint.code == "GOOD-1")).first() is None
    partial = runner.invoke(app, ["endpoints", "import", str(bad), "--partial"])
    assert partial.exit_code == 0, partial.output
    assert "新建 1" in partial.output
    assert "第 3 行 longitude" in partial.output


@pytest.mark.usefixtures("use_test_database")
def test_export_to_stdout_and_bad_filter(city: City) -> None:
    printed = runner.invoke(app, ["endpoints", "export", "--tag", "forest"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.count("forest") == 3
    wrong = runner.invoke(app, ["endpoints", "export", "--status", "asleep"])
    assert wrong.exit_code == 1
    assert "asleep" in wrong.output
