"""Apply checked campaign files: create or update by key, through the services, and say what changed.

Every write goes through the bulletins, playlists and campaigns services (so it is validated and
audited as an edit in the console would be); a file equal to the database writes nothing at all.

Status in files is a wish that only moves forward: draft → submitted → approved. Apply submits as
its author actor; it approves only when given an approver (``--approve`` on the command line, a
different actor in the audit log), so a file alone never approves a campaign. A campaign that is
already further along (approved, active, paused) stays as it is. Changing a campaign that is not a
draft withdraws it first (pausing it first if it is active), as the console would: the change then
needs a new approval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from sqlmodel import Session

from broadcast.auth.audit import Actor
from broadcast.bulletins.schemas import BulletinCreate, BulletinUpdate
from broadcast.bulletins.service import create_bulletin, update_bulletin
from broadcast.config import Settings
from broadcast.content.models import Bulletin
from broadcast.playlists.models import ItemKind, Playlist, PlaylistRevision
from broadcast.playlists.schemas import ItemIn, PlaylistCreate, RevisionIn
from broadcast.playlists.service import create_playlist, create_revision, items_of
from broadcast.scheduling import service
from broadcast.scheduling.files import BulletinSpec
from broadcast.scheduling.files_check import Plan, revision_items, source_revision
from broadcast.scheduling.models import Campaign, CampaignStatus
from broadcast.scheduling.presets import describe
from broadcast.scheduling.schemas import STATUS_NAMES, CampaignCreate, CampaignUpdate

Mark = Literal["+", "~", "=", "!"]
_BULLETIN_FIELDS = ("title", "text", "custom_fields", "engine", "voice", "rate")
_RANK = {
    CampaignStatus.draft: 0,
    CampaignStatus.submitted: 1,
    CampaignStatus.approved: 2,
    CampaignStatus.active: 2,
    CampaignStatus.paused: 2,
    CampaignStatus.ended: 2,
}
_WANTED = {
    "draft": CampaignStatus.draft,
    "submitted": CampaignStatus.submitted,
    "approved": CampaignStatus.approved,
}


@dataclass(frozen=True)
class Change:
    """One line of the diff: ``+`` created, ``~`` changed (fields old → new), ``=`` unchanged, ``!`` note."""

    mark: Mark
    what: str
    name: str
    fields: tuple[tuple[str, str, str], ...] = ()
    note: str = ""


@dataclass
class FileDiff:
    key: str
    changes: list[Change] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(change.mark in ("+", "~") for change in self.changes)

    def mark_of(self, what: str) -> Mark | None:
        return next((change.mark for change in self.changes if change.what == what), None)


@dataclass(frozen=True)
class Actors:
    """Who writes (author and submitter) and who approves (None: nothing is approved)."""

    author: Actor
    approver: Actor | None = None


def _fields(old: dict[str, Any], new: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    return tuple((name, _show(old[name]), _show(new[name])) for name in new if old[name] != new[name])


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value if len(value) <= 60 else value[:57] + "…"
    return json.dumps(value, ensure_ascii=False, default=str)


# ---- content ----


def _bulletin_change(spec: BulletinSpec, row: Bulletin | None) -> Change:
    wanted = spec.model_dump(include=set(_BULLETIN_FIELDS))
    if row is None:
        return Change("+", "文字稿", spec.title)
    fields = _fields({name: getattr(row, name) for name in _BULLETIN_FIELDS}, wanted)
    return Change("~" if fields else "=", "文字稿", spec.title, fields)


def _wanted_revision(session: Session, plan: Plan) -> tuple[PlaylistRevision | None, int]:
    """The existing revision whose content equals the file's (None: a new one is needed) and its repeat."""
    repeat = plan.loaded.spec.content.playlist.repeat
    # An edited bulletin gets a new revision too, so the campaign's approval and render follow it.
    if any(_bulletin_change(spec, row).mark != "=" for spec, row in plan.bulletins):
        return None, repeat
    for revision in _candidates(session, plan):
        if revision.repeat == repeat and revision_items(items_of(session, revision)) == plan.items:
            return revision, repeat
    return None, repeat


def _candidates(session: Session, plan: Plan) -> list[PlaylistRevision]:
    source = source_revision(session, plan.campaign, plan.playlist)
    newest = source_revision(session, None, plan.playlist)
    return [revision for revision in (source, newest) if revision is not None]


def _playlist_change(session: Session, plan: Plan) -> Change:
    spec = plan.loaded.spec.content.playlist
    if plan.playlist is None:
        return Change("+", "节目单", spec.name, note=f"{len(spec.items)} 条")
    revision, _ = _wanted_revision(session, plan)
    if revision is None:
        newest = plan.playlist.current_revision
        return Change(
            "~", "节目单", spec.name, (("版本", f"第 {newest} 版", f"第 {newest + 1} 版（新条目）"),)
        )
    return Change("=", "节目单", spec.name, note=f"第 {revision.number} 版")


def _revision_in(plan: Plan, ids: dict[str, int]) -> RevisionIn:
    items = []
    for (kind, ref, silence_ms, repeat), spec in zip(
        plan.items, plan.loaded.spec.content.playlist.items, strict=True
    ):
        if kind == ItemKind.bulletin and spec.bulletin is not None:
            ref = ids[spec.bulletin]
        refs: dict[str, int | None] = {"clip_id": None, "bulletin_id": None, "chime_id": None}
        if kind != ItemKind.silence:
            refs[f"{kind.value}_id"] = ref
        items.append(ItemIn(kind=kind, silence_ms=silence_ms, repeat=repeat, **refs))
    return RevisionIn(items=items, repeat=plan.loaded.spec.content.playlist.repeat)


def _apply_content(session: Session, plan: Plan, actor: Actor, settings: Settings) -> PlaylistRevision:
    reusable, _ = _wanted_revision(session, plan)  # decided before the bulletins change
    ids: dict[str, int] = {}
    for spec, row in plan.bulletins:
        data = spec.model_dump(include={*_BULLETIN_FIELDS})
        if row is None:
            row = create_bulletin(
                session, data=BulletinCreate.model_validate(data), actor=actor, settings=settings
            )
        elif _bulletin_change(spec, row).mark == "~":
            changed = {name: value for name, value in data.items() if getattr(row, name) != value}
            update_bulletin(
                session,
                bulletin=row,
                data=BulletinUpdate.model_validate(changed),
                actor=actor,
                settings=settings,
            )
        ids[spec.key] = row.id or 0
    wanted = plan.loaded.spec.content.playlist
    if plan.playlist is None:
        data = _revision_in(plan, ids).model_dump()
        playlist = create_playlist(
            session,
            data=PlaylistCreate.model_validate(
                {**data, "name": wanted.name, "description": wanted.description}
            ),
            actor=actor,
        )
        return source_revision(session, None, playlist) or _never()
    if reusable is not None:
        return reusable
    return create_revision(session, playlist=plan.playlist, data=_revision_in(plan, ids), actor=actor)


def _never() -> PlaylistRevision:
    raise AssertionError("a playlist just created has its first revision")


# ---- campaign ----


def _wanted_values(plan: Plan, playlist_name: str, revision_label: str) -> dict[str, Any]:
    spec, rule = plan.loaded.spec, plan.rule
    assert rule.season is not None
    return {
        "名称": spec.name,
        "说明": spec.description,
        "节目单": playlist_name,
        "节目单版本": revision_label,
        "播发范围": plan.selector,
        "季节": f"{rule.season.first} 至 {rule.season.last}",
        "重复规则": describe(rule),
        "RFC 5545": _rfc(
            rule.dtstart.isoformat(),
            rule.rrule,
            [a.isoformat() for a in rule.rdates],
            [a.isoformat() for a in rule.exdates],
        ),
        "例外日": [day.isoformat() for day in sorted(rule.exception_days)],
        "播出时段": plan.windows,
        "优先级": spec.priority,
        "每天最多播出": spec.max_plays_per_day,
        "字段值": spec.field_values,
    }


def _rfc(dtstart: str, rrule: str | None, rdates: list[str], exdates: list[str]) -> str:
    return f"DTSTART={dtstart} RRULE={rrule or '-'} RDATE={len(rdates)} EXDATE={','.join(exdates) or '-'}"


def _current_values(session: Session, campaign: Campaign) -> dict[str, Any]:
    rule = service.recurrence_of(campaign)
    playlist = session.get_one(Playlist, campaign.playlist_id)
    revision = session.get_one(PlaylistRevision, campaign.revision_id)
    instants = _rfc(
        rule.dtstart.isoformat(),
        rule.rrule,
        [a.isoformat() for a in rule.rdates],
        [a.isoformat() for a in rule.exdates],
    )
    return {
        "名称": campaign.name,
        "说明": campaign.description,
        "节目单": playlist.name,
        "节目单版本": f"第 {revision.number} 版",
        "播发范围": campaign.selector,
        "季节": f"{campaign.season_start} 至 {campaign.season_end}",
        "重复规则": describe(rule),
        "RFC 5545": instants,
        "例外日": list(campaign.exception_dates),
        "播出时段": list(campaign.windows),
        "优先级": campaign.priority,
        "每天最多播出": campaign.max_plays_per_day,
        "字段值": dict(campaign.field_values),
    }


def _campaign_fields(session: Session, plan: Plan) -> tuple[tuple[str, str, str], ...]:
    """Changed campaign fields, old → new (the RFC 5545 line compares instants, not their notation)."""
    assert plan.campaign is not None
    revision, _ = _wanted_revision(session, plan)
    label = f"第 {revision.number} 版" if revision is not None else "新版本"
    new = _wanted_values(plan, plan.loaded.spec.content.playlist.name, label)
    old = _current_values(session, plan.campaign)
    if service.recurrence_of(plan.campaign) == plan.rule:
        old["RFC 5545"] = new["RFC 5545"]
    return _fields(old, new)


def _status_change(campaign: Campaign | None, wanted: str, approver: Actor | None) -> Change | None:
    """Where the status goes (forward only); approval only with an approver."""
    current = campaign.status if campaign is not None else CampaignStatus.draft
    target = _WANTED[wanted]
    if target == CampaignStatus.approved and approver is None:
        target = CampaignStatus.submitted
    if _RANK[target] <= _RANK[current]:
        return None
    note = "文件要求已批准：需加 --approve，或由他人在控制台审批" if _WANTED[wanted] != target else ""
    return Change("~", "状态", f"{STATUS_NAMES[current]} → {STATUS_NAMES[target]}", note=note)


def diff_plan(session: Session, plan: Plan, *, approver: Actor | None) -> FileDiff:
    """What applying the plan would do, without writing anything."""
    diff = FileDiff(plan.key)
    diff.changes.extend(_bulletin_change(spec, row) for spec, row in plan.bulletins)
    diff.changes.append(_playlist_change(session, plan))
    spec = plan.loaded.spec
    campaign = plan.campaign
    if campaign is None:
        diff.changes.append(Change("+", "宣传计划", f"{spec.key}（{spec.name}）"))
    else:
        fields = _campaign_fields(session, plan)
        if fields and campaign.status == CampaignStatus.ended:
            note = "已结束的计划不能修改，未改动：请新建计划（换一个 key）"
            diff.changes.append(Change("!", "宣传计划", spec.key, fields, note))
            return diff
        note = (
            "" if not fields or campaign.status == CampaignStatus.draft else "先撤回为草稿再修改，需重新审批"
        )
        diff.changes.append(
            Change("~" if fields else "=", "宣传计划", f"{spec.key}（{spec.name}）", fields, note)
        )
    will_edit = campaign is not None and diff.mark_of("宣传计划") == "~"
    status = _status_change(None if will_edit else campaign, spec.status, approver)
    if status is not None:
        diff.changes.append(status)
    return diff


def _create_data(plan: Plan, revision: PlaylistRevision) -> dict[str, Any]:
    spec = plan.loaded.spec
    return {
        "name": spec.name,
        "description": spec.description,
        "playlist_id": revision.playlist_id,
        "revision": revision.number,
        "selector": plan.selector,
        "season": plan.season,
        "recurrence": plan.recurrence,
        "windows": plan.windows,
        "priority": spec.priority,
        "max_plays_per_day": spec.max_plays_per_day,
        "exception_dates": plan.exception_dates,
        "field_values": spec.field_values,
    }


def _to_draft(session: Session, campaign: Campaign, actor: Actor) -> None:
    if campaign.status == CampaignStatus.active:
        service.pause_campaign(session, campaign=campaign, actor=actor)
    if campaign.status != CampaignStatus.draft:
        service.withdraw_campaign(session, campaign=campaign, actor=actor)


def apply_plan(
    session: Session, plan: Plan, *, actors: Actors, settings: Settings
) -> tuple[FileDiff, Campaign | None]:
    """Write the plan's content and campaign (statuses move later, once programs are rendered)."""
    diff = diff_plan(session, plan, approver=actors.approver)
    if not diff.changed or diff.mark_of("宣传计划") == "!":
        return diff, plan.campaign
    revision = _apply_content(session, plan, actors.author, settings)
    data = _create_data(plan, revision)
    if plan.campaign is None:
        create = CampaignCreate.model_validate({**data, "key": plan.key})
        return diff, service.create_campaign(session, data=create, actor=actors.author)
    if diff.mark_of("宣传计划") == "~":
        _to_draft(session, plan.campaign, actors.author)
        update = CampaignUpdate.model_validate(data)
        service.update_campaign(session, campaign=plan.campaign, data=update, actor=actors.author)
    return diff, plan.campaign


def advance_status(
    session: Session, campaign: Campaign, wanted: str, *, actors: Actors, today: date
) -> CampaignStatus:
    """Submit (as the author) and approve (as the approver, if any) up to the status the file wants."""
    if _RANK[campaign.status] < _RANK[_WANTED[wanted]] and campaign.status == CampaignStatus.draft:
        service.submit_campaign(session, campaign=campaign, actor=actors.author, today=today)
    if wanted == "approved" and actors.approver is not None and campaign.status == CampaignStatus.submitted:
        service.approve_campaign(session, campaign=campaign, actor=actors.approver, today=today)
    return campaign.status
