"""Check or apply a whole ``schedules/`` folder against the database.

Apply runs in three steps so that a failure never leaves half a folder: (1) every file is checked
and, only if all pass, content and campaigns are written in ONE transaction; (2) the programs of
campaigns the files want submitted or approved are rendered if they are not yet (submission
requires a rendered program); (3) statuses move forward, one transaction per campaign. A second
run finds everything equal: no write, no audit entry, no new revision, no render.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from broadcast.auth.audit import CLI, Actor
from broadcast.auth.models import User
from broadcast.bulletins.templates import RenderScope, render_scope
from broadcast.config import PROJECT_ROOT, Settings
from broadcast.content.chimes import ensure_builtin_chimes
from broadcast.content.store import get_store
from broadcast.db import transaction
from broadcast.errors import BroadcastError
from broadcast.playlists import jobs, renders
from broadcast.playlists.models import PlaylistRevision, RenderStatus
from broadcast.playlists.schemas import RenderRequest
from broadcast.regions.models import Endpoint, Village
from broadcast.scheduling import service
from broadcast.scheduling.files import FileError, Problem, load_folder
from broadcast.scheduling.files_apply import Actors, FileDiff, advance_status, apply_plan, diff_plan
from broadcast.scheduling.files_check import Plan, check_file
from broadcast.scheduling.models import Campaign, CampaignStatus
from broadcast.targets.schemas import Selector
from broadcast.targets.service import resolve_selector

Progress = Callable[[str], None]
# ``--approve``: the CLI approving, a system actor named apart from the author (``cli``) in the audit log.
CLI_APPROVER = Actor(user_id=None, name="cli --approve")
SCHEDULES_DIR = PROJECT_ROOT / "schedules"
DEMO_AUTHOR, DEMO_APPROVER = "xuanchuan", "admin"


@dataclass
class SyncResult:
    problems: list[Problem] = field(default_factory=list)
    diffs: list[FileDiff] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(diff.changed for diff in self.diffs)


def _quiet(_: str) -> None:
    return None


def check_plans(
    session: Session, folder: Path, *, today: date, settings: Settings
) -> tuple[list[Plan], list[Problem]]:
    """Every file of the folder checked against the database (reading only)."""
    loaded, problems = load_folder(folder)
    plans: list[Plan] = []
    for item in loaded:
        try:
            plans.append(check_file(session, item, today=today, settings=settings))
        except FileError as exc:
            problems.extend(exc.problems)
    return plans, sorted(problems, key=lambda p: (p.file, p.line or 0))


def check_folder(
    engine: Engine, folder: Path, *, today: date, settings: Settings, approver: bool = False
) -> SyncResult:
    """Check every file and compute the diff apply would print; writes nothing."""
    with Session(engine) as session:
        plans, problems = check_plans(session, folder, today=today, settings=settings)
        approving = CLI_APPROVER if approver else None
        diffs = [] if problems else [diff_plan(session, plan, approver=approving) for plan in plans]
        session.rollback()
    return SyncResult(problems, diffs)


def apply_folder(
    engine: Engine,
    folder: Path,
    *,
    actors: Actors,
    today: date,
    settings: Settings,
    progress: Progress = _quiet,
) -> SyncResult:
    """Apply every file (see module doc); problems stop everything before any write."""
    with Session(engine) as session:
        plans, problems = check_plans(session, folder, today=today, settings=settings)
    if problems:
        return SyncResult(problems)
    if any(ref is None for plan in plans for ref in plan.refs.values()):
        with transaction(engine) as session:
            ensure_builtin_chimes(session, store=get_store(settings), settings=settings)
    with transaction(engine) as session:
        plans, problems = check_plans(session, folder, today=today, settings=settings)  # with the chimes' ids
        if problems:
            return SyncResult(problems)
        result = SyncResult()
        wanted: dict[str, str] = {}
        for plan in plans:
            try:
                diff, _ = apply_plan(session, plan, actors=actors, settings=settings)
            except BroadcastError as exc:
                session.rollback()
                return SyncResult([plan.loaded.problem(f"写入失败，整个目录未做改动：{exc.message}")])
            result.diffs.append(diff)
            wanted[plan.key] = plan.loaded.spec.status
    for key, status in wanted.items():
        if status != "draft":
            result.problems.extend(
                _advance(
                    engine, key, status, actors=actors, today=today, settings=settings, progress=progress
                )
            )
    return result


def _advance(
    engine: Engine,
    key: str,
    status: str,
    *,
    actors: Actors,
    today: date,
    settings: Settings,
    progress: Progress,
) -> list[Problem]:
    with transaction(engine) as session:
        campaign = service.get_campaign_by_key(session, key)
        assert campaign is not None
        if campaign.status != CampaignStatus.draft and not (status == "approved" and actors.approver):
            return []
        revision_id = campaign.revision_id
        needs_render = service.program_duration_ms(session, revision_id) is None
    if needs_render:
        problem = _render(engine, key, today=today, settings=settings, progress=progress)
        if problem is not None:
            return [problem]
    try:
        with transaction(engine) as session:
            campaign = service.get_campaign_by_key(session, key)
            assert campaign is not None
            advance_status(session, campaign, status, actors=actors, today=today)
    except BroadcastError as exc:
        return [Problem(key, f"状态未能推进：{exc.message}")]
    return []


def _render(
    engine: Engine, key: str, *, today: date, settings: Settings, progress: Progress
) -> Problem | None:
    """Render the campaign's program for one place and day (the first village it reaches, its first day)."""
    with transaction(engine) as session:
        campaign = service.get_campaign_by_key(session, key)
        assert campaign is not None
        revision = session.get_one(PlaylistRevision, campaign.revision_id)
        request = RenderRequest(
            village=_first_village(session, campaign, revision),
            date=max(today, campaign.season_start),
            fields=dict(campaign.field_values),
        )
        render = renders.request_render(session, revision=revision, data=request, actor=CLI, today=today)
        render_id, status = render.id or 0, render.status
    if status == RenderStatus.queued and jobs.claim(engine, render_id):
        progress(f"合成节目：{key}")
        render = jobs.execute(engine, render_id, settings=settings)
    if render.status != RenderStatus.done:
        return Problem(
            key, f"节目合成未完成（{render.status.value}）：{render.error or '请稍后再运行 apply'}"
        )
    return None


def _first_village(session: Session, campaign: Campaign, revision: PlaylistRevision) -> str | None:
    """A village is needed only when a bulletin names the village or town."""
    texts = [bulletin.text for bulletin in renders.bulletins_of(session, revision)]
    if all(render_scope(text) == RenderScope.once for text in texts):
        return None
    reached = resolve_selector(session, selector=Selector.model_validate(campaign.selector))
    query = (
        select(Village.code)
        .join(Endpoint, col(Endpoint.village_id) == col(Village.id))
        .where(col(Endpoint.id).in_(reached))
        .order_by(col(Village.code))
    )
    return session.exec(query.limit(1)).first()


def _user_actor(session: Session, username: str) -> Actor:
    user = session.exec(select(User).where(User.username == username)).one()
    return Actor(user_id=user.id, name=user.username)


def apply_demo_schedules(
    engine: Engine, *, today: date, settings: Settings, progress: Progress = _quiet
) -> SyncResult:
    """The demo's year of campaigns: written by the demo propagandist, approved by the demo admin."""
    with transaction(engine) as session:
        actors = Actors(_user_actor(session, DEMO_AUTHOR), _user_actor(session, DEMO_APPROVER))
    return apply_folder(
        engine, SCHEDULES_DIR, actors=actors, today=today, settings=settings, progress=progress
    )
