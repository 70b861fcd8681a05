"""Campaign workflow: submit, approve (never your own), reject, withdraw, pause, resume, end; season jobs."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from broadcast.auth.audit import Actor
from broadcast.auth.models import AuditEntry, Role, User
from broadcast.errors import Conflict, Forbidden, Invalid
from broadcast.scheduling import service
from broadcast.scheduling.models import Campaign, CampaignStatus
from broadcast.scheduling.refresh import pending_refresh, take_refresh
from broadcast.scheduling.schemas import CampaignCreate
from tests import builders
from tests.conftest import bearer
from tests.scheduling.campaign_builders import (
    audit_actions,
    campaign_body,
    playlist_revision,
)


def _create(
    client: TestClient, session: Session, headers: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    revision = playlist_revision(session)
    session.commit()
    response = client.post(
        "/api/v1/campaigns", json=campaign_body(revision.playlist_id, **overrides), headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_submit_then_approve_by_someone_else(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]], users: dict[Role, User]
) -> None:
    author = headers[Role.propagandist]
    url = f"/api/v1/campaigns/{_create(client, session, author)['id']}"
    submitted = client.post(f"{url}/submit", headers=author)
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["campaign"]["status"] == "submitted"
    assert submitted.json()["conflicts"]["collisions"] == []
    assert submitted.json()["campaign"]["submitted_by_name"] == users[Role.propagandist].display_name
    own = client.post(f"{url}/approve", headers=author)
    assert own.status_code == 403
    assert own.json()["error"]["message"].startswith("不能审批自己提交的计划")
    assert client.post(f"{url}/approve", headers=headers[Role.duty_officer]).status_code == 403
    session.expire_all()
    assert pending_refresh(session) is None
    approved = client.post(f"{url}/approve", headers=headers[Role.admin]).json()
    assert approved["status"] == "approved"  # its season (October 2030) has not started
    assert approved["approved_by_name"] == users[Role.admin].display_name
    assert approved["version"] == 3
    session.expire_all()
    marker = pending_refresh(session)
    assert marker is not None
    assert marker.holder.startswith(f"campaign {approved['id']} approve")
    assert audit_actions(session) == ["campaign.create", "campaign.submit", "campaign.approve"]
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "campaign.approve")).one()
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["status"], entry.after["status"]) == ("submitted", "approved")
    assert entry.actor_id == users[Role.admin].id


def test_submitter_other_than_author_cannot_approve_either(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    colleague = builders.make_user(session, role=Role.propagandist)
    third = builders.make_user(session, role=Role.propagandist)
    session.commit()
    url = f"/api/v1/campaigns/{_create(client, session, headers[Role.propagandist])['id']}"
    assert client.post(f"{url}/submit", headers=bearer(colleague)).status_code == 200
    assert client.post(f"{url}/approve", headers=bearer(colleague)).status_code == 403
    assert client.post(f"{url}/approve", headers=headers[Role.propagandist]).status_code == 403
    assert client.post(f"{url}/approve", headers=bearer(third)).json()["status"] == "approved"


def test_an_unrendered_revision_cannot_be_submitted(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    revision = playlist_revision(session, rendered=False, revisions=2)
    session.commit()
    body = campaign_body(revision.playlist_id)
    created = client.post("/api/v1/campaigns", json=body, headers=headers[Role.propagandist]).json()
    response = client.post(f"/api/v1/campaigns/{created['id']}/submit", headers=headers[Role.propagandist])
    assert response.status_code == 409
    assert response.json()["error"]["message"].startswith("节目单第 2 版尚未生成节目，请先生成")
    assert (
        client.get(f"/api/v1/campaigns/{created['id']}", headers=headers[Role.admin]).json()["status"]
        == "draft"
    )
    assert audit_actions(session) == ["campaign.create"]


def test_wrong_state_transitions_name_the_current_status(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    author, admin = headers[Role.propagandist], headers[Role.admin]
    url = f"/api/v1/campaigns/{_create(client, session, author)['id']}"
    for action, status_name in (
        ("approve", "草稿"),
        ("pause", "草稿"),
        ("withdraw", "草稿"),
        ("end", "草稿"),
    ):
        response = client.post(f"{url}/{action}", headers=admin)
        assert response.status_code == 409, action
        assert f"当前为「{status_name}」" in response.json()["error"]["message"]
    client.post(f"{url}/submit", headers=author)
    edit = client.patch(url, json={"priority": 9}, headers=author)
    assert edit.status_code == 409
    assert "「待审批」" in edit.json()["error"]["message"]
    assert "撤回" in edit.json()["error"]["message"]
    assert client.delete(url, headers=author).status_code == 409
    assert client.post(f"{url}/submit", headers=author).status_code == 409
    assert client.post(f"{url}/resume", headers=admin).status_code == 409
    assert client.get(url, headers=admin).json()["version"] == 2


def test_reject_withdraw_and_edit_again(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    author, admin = headers[Role.propagandist], headers[Role.admin]
    url = f"/api/v1/campaigns/{_create(client, session, author)['id']}"
    client.post(f"{url}/submit", headers=author)
    assert client.post(f"{url}/reject", json={"reason": ""}, headers=admin).status_code == 422
    rejected = client.post(f"{url}/reject", json={"reason": "时间与防溺水冲突"}, headers=admin).json()
    assert rejected["status"] == "draft"
    assert rejected["submitted_by_name"] is None
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "campaign.reject")).one()
    assert entry.after is not None
    assert entry.after["reason"] == "时间与防溺水冲突"
    assert client.patch(url, json={"priority": 6}, headers=author).status_code == 200
    client.post(f"{url}/submit", headers=author)
    assert client.post(f"{url}/withdraw", headers=author).json()["status"] == "draft"
    client.post(f"{url}/submit", headers=author)
    client.post(f"{url}/approve", headers=admin)
    withdrawn = client.post(f"{url}/withdraw", headers=author).json()
    assert withdrawn["status"] == "draft"
    assert withdrawn["approved_by_name"] is None
    assert client.patch(url, json={"priority": 7}, headers=author).json()["priority"] == 7


def test_pause_resume_end_inside_the_season(
    client: TestClient, session: Session, headers: dict[Role, dict[str, str]]
) -> None:
    author, admin = headers[Role.propagandist], headers[Role.admin]
    season = {"first": service.local_today().isoformat(), "last": "2035-12-31"}
    url = f"/api/v1/campaigns/{_create(client, session, author, season=season)['id']}"
    client.post(f"{url}/submit", headers=author)
    assert client.post(f"{url}/approve", headers=admin).json()["status"] == "active"
    take_refresh(session)
    session.commit()
    assert client.post(f"{url}/pause", headers=author).json()["status"] == "paused"
    session.expire_all()
    assert pending_refresh(session) is not None
    active = client.patch(url, json={"priority": 1}, headers=author)
    assert active.status_code == 409
    assert client.post(f"{url}/resume", headers=author).json()["status"] == "active"
    ended = client.post(f"{url}/end", headers=author).json()
    assert ended["status"] == "ended"
    assert ended["status_name"] == "已结束"
    assert client.post(f"{url}/resume", headers=author).status_code == 409
    assert audit_actions(session)[-4:] == [
        "campaign.approve",
        "campaign.pause",
        "campaign.resume",
        "campaign.end",
    ]


def _service_campaign(session: Session, user: User, first: date, last: date) -> Campaign:
    revision = playlist_revision(session)
    data = CampaignCreate.model_validate(
        campaign_body(revision.playlist_id, season={"first": first.isoformat(), "last": last.isoformat()})
    )
    actor = Actor(user_id=user.id, name=user.username)
    return service.create_campaign(session, data=data, actor=actor)


def test_season_jobs_start_and_end_campaigns(session: Session, users: dict[Role, User]) -> None:
    author, chief = users[Role.propagandist], users[Role.admin]
    author_actor, chief_actor = Actor(author.id, author.username), Actor(chief.id, chief.username)
    winter = _service_campaign(session, author, date(2030, 10, 1), date(2031, 4, 30))
    summer = _service_campaign(session, author, date(2030, 6, 1), date(2030, 9, 30))
    for campaign in (winter, summer):
        service.submit_campaign(session, campaign=campaign, actor=author_actor, today=date(2030, 5, 1))
        service.approve_campaign(session, campaign=campaign, actor=chief_actor, today=date(2030, 5, 1))
    assert (winter.status, summer.status) == (CampaignStatus.approved, CampaignStatus.approved)
    assert service.activate_due(session, today=date(2030, 6, 1)) == [summer]
    assert service.activate_due(session, today=date(2030, 6, 2)) == []
    service.pause_campaign(session, campaign=summer, actor=chief_actor)
    assert service.end_due(session, today=date(2030, 10, 1)) == [summer]
    assert summer.status == CampaignStatus.ended
    assert service.activate_due(session, today=date(2030, 10, 1)) == [winter]
    assert service.end_due(session, today=date(2031, 5, 1)) == [winter]
    session.commit()
    assert audit_actions(session).count("campaign.activate") == 2
    assert audit_actions(session).count("campaign.end") == 2


def test_service_refusals_leave_the_campaign_as_it_was(session: Session, users: dict[Role, User]) -> None:
    author = users[Role.propagandist]
    actor = Actor(author.id, author.username)
    campaign = _service_campaign(session, author, date(2030, 10, 1), date(2031, 4, 30))
    with pytest.raises(Invalid, match="季节已于 2031-04-30 结束"):
        service.submit_campaign(session, campaign=campaign, actor=actor, today=date(2031, 5, 1))
    assert campaign.submitted_by is None
    service.submit_campaign(session, campaign=campaign, actor=actor, today=date(2030, 9, 1))
    with pytest.raises(Forbidden):
        service.approve_campaign(session, campaign=campaign, actor=actor, today=date(2030, 9, 1))
    with pytest.raises(Conflict, match="「待审批」"):
        service.pause_campaign(session, campaign=campaign, actor=actor)
    assert campaign.status == CampaignStatus.submitted
    assert campaign.approved_by is None
    assert campaign.version == 2
