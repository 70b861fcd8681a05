"""The conflict report: which campaigns collide, on how many endpoints, at which local times (journey 1)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from broadcast.auth.audit import Actor
from broadcast.auth.models import Role, User
from broadcast.config import Settings
from broadcast.errors import Conflict
from broadcast.scheduling import service
from broadcast.scheduling.conflicts import CHECK_DAYS, campaign_conflicts
from broadcast.scheduling.models import Campaign
from broadcast.scheduling.schemas import CampaignCreate
from tests.scheduling.campaign_builders import campaign_body, playlist_revision

BEFORE = date(2030, 5, 1)


def _campaign(
    session: Session,
    users: dict[Role, User],
    *,
    name: str,
    tags: list[str] | None,
    season: tuple[str, str],
    times: list[str],
    approve: bool = True,
    priority: int = 5,
) -> Campaign:
    revision = playlist_revision(session)
    selector: dict[str, Any] = {"tags": tags} if tags else {"all": True}
    body = campaign_body(
        revision.playlist_id,
        name=name,
        selector=selector,
        season={"first": season[0], "last": season[1]},
        recurrence={"preset": "daily", "times": times},
        priority=priority,
    )
    author, chief = users[Role.propagandist], users[Role.admin]
    author_actor = Actor(author.id, author.username)
    campaign = service.create_campaign(session, data=CampaignCreate.model_validate(body), actor=author_actor)
    if approve:
        service.submit_campaign(session, campaign=campaign, actor=author_actor, today=BEFORE)
        service.approve_campaign(
            session, campaign=campaign, actor=Actor(chief.id, chief.username), today=BEFORE
        )
    return campaign


def test_collisions_by_endpoints_times_and_days(
    session: Session, users: dict[Role, User], settings: Settings
) -> None:
    # small_city: 12 endpoints, 6 tagged river, 3 tagged forest.
    drowning = _campaign(
        session, users, name="防溺水", tags=["river"], season=("2030-06-01", "2030-09-30"), times=["12:10"]
    )
    forest = _campaign(
        session,
        users,
        name="秋冬巡山",
        tags=["forest"],
        season=("2030-10-01", "2030-12-31"),
        times=["18:20"],
        priority=6,
    )
    _campaign(
        session, users, name="早间新闻", tags=None, season=("2030-01-01", "2031-12-31"), times=["06:50"]
    )
    _campaign(
        session,
        users,
        name="草稿",
        tags=None,
        season=("2030-01-01", "2031-12-31"),
        times=["12:10"],
        approve=False,
    )
    fire = _campaign(
        session,
        users,
        name="森林防火",
        tags=None,
        season=("2030-09-25", "2031-04-30"),
        times=["06:40", "12:10", "18:20"],
        approve=False,
    )
    report = campaign_conflicts(session, campaign=fire, settings=settings, today=date(2030, 9, 1))
    assert report.checked_days == CHECK_DAYS
    assert [(c.campaign_id, c.endpoints, c.times) for c in report.collisions] == [
        (drowning.id, 6, ["12:10"]),
        (forest.id, 3, ["18:20"]),
    ]
    first, second = report.collisions
    assert (first.first_day, first.last_day, first.days) == (date(2030, 9, 25), date(2030, 9, 30), 6)
    assert (second.first_day, second.last_day, second.days) == (
        date(2030, 10, 1),
        date(2030, 10, 14),
        CHECK_DAYS,
    )
    assert first.message.startswith("与“防溺水”")
    assert "在 6 个终端上冲突：9月25日至9月30日（6 天）12:10" in first.message
    assert "优先级相同" in first.message
    assert "对方优先级更高" in second.message


def test_the_report_starts_today_and_skips_what_cannot_collide(
    session: Session, users: dict[Role, User], settings: Settings
) -> None:
    _campaign(
        session, users, name="防溺水", tags=["river"], season=("2030-06-01", "2030-09-30"), times=["12:10"]
    )
    fire = _campaign(
        session,
        users,
        name="森林防火",
        tags=["forest"],
        season=("2030-09-25", "2031-04-30"),
        times=["12:10"],
        approve=False,
    )
    assert (
        campaign_conflicts(session, campaign=fire, settings=settings, today=date(2030, 10, 1)).collisions
        == []
    )
    late = campaign_conflicts(session, campaign=fire, settings=settings, today=date(2030, 9, 28))
    assert late.collisions == []  # forest and river endpoints are disjoint in the small city


def test_an_unrendered_campaign_has_no_report(
    session: Session, users: dict[Role, User], settings: Settings
) -> None:
    revision = playlist_revision(session, rendered=False)
    author = users[Role.propagandist]
    data = CampaignCreate.model_validate(campaign_body(revision.playlist_id))
    campaign = service.create_campaign(session, data=data, actor=Actor(author.id, author.username))
    with pytest.raises(Conflict, match="尚未生成节目"):
        campaign_conflicts(session, campaign=campaign, settings=settings)


def test_submit_warns_and_get_conflicts_repeats_it(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    author, admin = headers[Role.propagandist], headers[Role.admin]

    def create(name: str, selector: dict[str, Any], season: dict[str, str]) -> str:
        revision = playlist_revision(session)
        session.commit()
        body = campaign_body(revision.playlist_id, name=name, selector=selector, season=season)
        return f"/api/v1/campaigns/{client.post('/api/v1/campaigns', json=body, headers=author).json()['id']}"

    drowning = create("防溺水", {"tags": ["river"]}, {"first": "2030-06-01", "last": "2030-09-30"})
    client.post(f"{drowning}/submit", headers=author)
    client.post(f"{drowning}/approve", headers=admin)
    fire = create("森林防火", {"all": True}, {"first": "2030-09-25", "last": "2031-04-30"})
    submitted = client.post(f"{fire}/submit", headers=author)
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["campaign"]["status"] == "submitted"
    collisions = submitted.json()["conflicts"]["collisions"]
    assert [(c["name"], c["endpoints"], c["times"], c["days"]) for c in collisions] == [
        ("防溺水", 6, ["06:40", "12:10", "18:20"], 6)
    ]
    again = client.get(f"{fire}/conflicts", headers=headers[Role.duty_officer])
    assert again.json() == submitted.json()["conflicts"]
    assert client.get(f"{fire}/conflicts", headers=headers[Role.village_admin]).status_code == 403
