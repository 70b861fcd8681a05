"""A campaign as the API shows it: its recurrence in words, the endpoints reached, author and approver."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import ValidationError
from sqlmodel import Session, col, select

from broadcast.auth.models import User
from broadcast.errors import Invalid
from broadcast.playlists.models import Playlist, PlaylistRevision
from broadcast.scheduling.models import Campaign
from broadcast.scheduling.presets import describe
from broadcast.scheduling.schemas import STATUS_NAMES, CampaignOut, RecurrenceOut, SeasonIn
from broadcast.scheduling.service import recurrence_of
from broadcast.targets.schemas import Selector
from broadcast.targets.service import count_reached


def user_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {user_id for user_id in ids if user_id is not None}
    if not wanted:
        return {}
    rows = session.exec(select(User).where(col(User.id).in_(wanted))).all()
    return {user.id or 0: user.display_name or user.username for user in rows}


def reached_endpoints(session: Session, campaign: Campaign) -> tuple[int | None, str | None]:
    """How many endpoints the stored selector reaches now, or why it cannot be evaluated."""
    try:
        return count_reached(session, selector=Selector.model_validate(campaign.selector)), None
    except Invalid as exc:
        return None, exc.message
    except ValidationError:
        return None, "保存的播发范围无效，请重新编辑"


def _recurrence_out(campaign: Campaign) -> RecurrenceOut:
    rule = recurrence_of(campaign)
    return RecurrenceOut(
        dtstart=rule.dtstart,
        rrule=rule.rrule,
        rdates=campaign.rdates,
        exdates=campaign.exdates,
        text=describe(rule),
    )


def campaign_outs(session: Session, campaigns: Sequence[Campaign]) -> list[CampaignOut]:
    people = (id_ for c in campaigns for id_ in (c.created_by, c.submitted_by, c.approved_by))
    names = user_names(session, people)
    return [_out(session, campaign, names) for campaign in campaigns]


def campaign_out(session: Session, campaign: Campaign) -> CampaignOut:
    return campaign_outs(session, [campaign])[0]


def _out(session: Session, campaign: Campaign, names: dict[int, str]) -> CampaignOut:
    playlist = session.get_one(Playlist, campaign.playlist_id)
    revision = session.get_one(PlaylistRevision, campaign.revision_id)
    endpoints, problem = reached_endpoints(session, campaign)
    return CampaignOut(
        **campaign.model_dump(
            include={"id", "key", "name", "description", "playlist_id", "revision_id", "windows"}
            | {"priority", "max_plays_per_day", "field_values", "status", "version", "created_by"}
            | {"submitted_at", "approved_at", "created_at", "updated_at", "exception_dates"}
        ),
        playlist_name=playlist.name,
        revision=revision.number,
        selector=Selector.model_validate(campaign.selector),
        endpoints=endpoints,
        target_problem=problem,
        season=SeasonIn(first=campaign.season_start, last=campaign.season_end),
        recurrence=_recurrence_out(campaign),
        status_name=STATUS_NAMES[campaign.status],
        created_by_name=_name(names, campaign.created_by),
        submitted_by_name=_name(names, campaign.submitted_by),
        approved_by_name=_name(names, campaign.approved_by),
    )


def _name(names: dict[int, str], user_id: int | None) -> str | None:
    return None if user_id is None else names.get(user_id)
