"""The demo city: exact counts on both databases, determinism, plausibility, idempotence, refusals."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from broadcast.auth.models import AuditEntry, Role, User, UserVillage
from broadcast.config import Settings
from broadcast.demo import cli as demo_cli
from broadcast.demo.city import build_demo_city, demo_digest
from broadcast.demo.plan import BOX, plan_city
from broadcast.errors import Conflict
from broadcast.regions.models import Endpoint, EndpointTag, Town, TownKind, Village, VillageKind
from tests import builders

PLAN = plan_city(2026)


def _count(session: Session, model: type) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


def test_demo_city_is_built_exactly_once(session: Session) -> None:
    summary = build_demo_city(session, seed=2026)
    session.commit()
    assert summary.created
    assert (summary.towns, summary.villages, summary.endpoints) == (29, 278, 9305)
    assert (_count(session, Town), _count(session, Village), _count(session, Endpoint)) == (29, 278, 9305)
    per_village = select(func.count()).select_from(Endpoint).group_by(col(Endpoint.village_id))
    sizes = session.exec(per_village).all()
    assert (len(sizes), min(sizes) >= 15, max(sizes) <= 60) == (278, True, True)
    assert demo_digest(session) == PLAN.digest()
    admin = session.exec(select(User).where(User.role == Role.village_admin)).one()
    scoped = session.exec(select(UserVillage.village_id).where(UserVillage.user_id == admin.id)).one()
    forest = (
        select(EndpointTag.tag)
        .join(Endpoint)
        .where(Endpoint.village_id == scoped, EndpointTag.tag == "forest")
    )
    assert session.exec(forest).first() == "forest"
    assert sorted(session.exec(select(User.role)).all()) == sorted(
        [Role.admin, Role.propagandist, Role.duty_officer, Role.duty_officer, Role.village_admin]
    )

    again = build_demo_city(session, seed=2026)
    session.commit()
    assert not again.created
    assert not any(login.created for login in again.logins)
    assert all(login.password_works for login in again.logins)
    assert _count(session, Endpoint) == 9305
    assert session.exec(select(AuditEntry.action)).all() == ["demo.seed"]


def test_a_database_with_other_towns_is_refused(session: Session) -> None:
    builders.small_city(session)
    session.commit()
    with pytest.raises(Conflict, match="非演示"):
        build_demo_city(session, seed=2026)
    session.rollback()
    assert (_count(session, Town), _count(session, Endpoint), _count(session, AuditEntry)) == (2, 12, 0)


def test_the_plan_is_the_same_in_every_process() -> None:
    code = "from broadcast.demo.plan import plan_city; print(plan_city(2026).digest())"
    root = Path(__file__).resolve().parents[2]
    other = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONHASHSEED": "12345"},
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert other.stdout.strip() == PLAN.digest()
    assert plan_city(7).digest() != PLAN.digest()


def test_the_plan_is_plausible() -> None:
    assert (len(PLAN.towns), len(PLAN.villages), len(PLAN.endpoints)) == (29, 278, 9305)
    assert all(re.fullmatch(r"430181\d{3}", t.code) for t in PLAN.towns)
    assert all(re.fullmatch(r"430181\d{6}", v.code) and v.code.startswith(v.town_code) for v in PLAN.villages)
    kinds = {t.code: t.kind for t in PLAN.towns}
    for village in PLAN.villages:
        urban = kinds[village.town_code] == TownKind.subdistrict
        assert village.kind == (VillageKind.community if urban else VillageKind.village)
        assert village.name.endswith("社区" if urban else "村")
    assert len({v.name for v in PLAN.villages}) == 278
    sizes = Counter(e.village_code for e in PLAN.endpoints)
    assert min(sizes.values()) >= 15
    assert max(sizes.values()) <= 60
    assert max(sizes.values()) - min(sizes.values()) > 25, "spread unevenly"
    (lat0, lat1), (lon0, lon1) = BOX
    assert all(lat0 <= e.latitude <= lat1 and lon0 <= e.longitude <= lon1 for e in PLAN.endpoints)
    statuses = Counter(e.status.value for e in PLAN.endpoints)
    assert 0.01 <= statuses["offline"] / 9305 <= 0.02
    assert 0 < statuses["fault"] < 50


def test_tags_follow_the_land() -> None:
    towns = {t.code: t for t in PLAN.towns}
    villages = {v.code: v for v in PLAN.villages}
    tags_by_terrain: dict[str, Counter[str]] = {}
    for endpoint in PLAN.endpoints:
        terrain = towns[villages[endpoint.village_code].town_code].terrain
        tags_by_terrain.setdefault(terrain, Counter()).update(endpoint.tags)
    assert tags_by_terrain["mountain"]["forest"] > tags_by_terrain["plain"]["forest"] * 3
    assert tags_by_terrain["urban"]["high_rise"] > 100
    assert tags_by_terrain["urban"]["forest"] == 0
    assert "high_rise" not in tags_by_terrain["mountain"]
    for endpoint in PLAN.endpoints:
        if "reservoir" in endpoint.tags:
            assert "reservoir" in villages[endpoint.village_code].features
    assert all(
        sum(1 for e in PLAN.endpoints if tag in e.tags) > 10
        for tag in (
            "forest",
            "reservoir",
            "river",
            "school",
            "market",
            "industrial_park",
            "highway",
            "high_rise",
            "construction",
        )
    )


def test_seed_demo_refuses_production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = Settings(mode="production", data_dir=tmp_path)
    monkeypatch.setattr(demo_cli, "get_settings", lambda: settings)
    result = CliRunner().invoke(_app(), [])
    assert result.exit_code == 2
    assert "生产模式" in result.output
    assert not (tmp_path / "broadcast.db").exists()


def test_seed_demo_reports_a_foreign_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from broadcast import migrations
    from broadcast.db import make_engine, transaction

    settings = Settings(data_dir=tmp_path)
    engine = make_engine(settings.effective_database_url)
    migrations.upgrade(engine)
    with transaction(engine) as session:
        builders.make_town(session, name="别处镇")
    engine.dispose()
    monkeypatch.setattr(demo_cli, "get_settings", lambda: settings)
    result = CliRunner().invoke(_app(), [])
    assert result.exit_code == 1
    assert "非演示" in result.output


def _app():  # type: ignore[no-untyped-def]
    import typer

    app = typer.Typer()
    app.command()(demo_cli.seed_demo)
    return app
