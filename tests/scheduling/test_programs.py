"""After materializing, the scheduler asks for each program the planned slots will play."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import Session, select

from broadcast.config import Settings
from broadcast.content.models import Bulletin
from broadcast.playlists.models import ItemKind, PlaylistItem, PlaylistRevision, Render, RenderStatus
from broadcast.scheduling.materialize import materialize
from broadcast.scheduling.programs import request_slot_programs
from broadcast.scheduling.recurrence import SHANGHAI
from tests.builders import small_city
from tests.scheduling.campaign_builders import playlist_revision
from tests.scheduling.rundown_builders import make_campaign

SEASON = (date(2026, 5, 1), date(2026, 7, 31))
NOW = datetime(2026, 6, 1, 7, tzinfo=SHANGHAI).astimezone(UTC)


def _queued(session: Session, revision: PlaylistRevision) -> list[Render]:
    query = select(Render).where(Render.revision_id == revision.id, Render.status == RenderStatus.queued)
    return list(session.exec(query).all())


def _with_bulletin(session: Session, revision: PlaylistRevision, text: str) -> None:
    bulletin = Bulletin(title="通知", text=text)
    session.add(bulletin)
    session.flush()
    item = PlaylistItem(
        revision_id=revision.id or 0, position=0, kind=ItemKind.bulletin, bulletin_id=bulletin.id
    )
    session.add(item)
    session.flush()


def _plan(
    session: Session, settings: Settings, revision: PlaylistRevision, selector: dict[str, object]
) -> int:
    make_campaign(session, revision=revision, selector=selector, times=["08:00", "12:00"], season=SEASON)
    report = materialize(session, settings=settings, now=NOW)
    return request_slot_programs(
        session, window_start=report.window_start, window_end=report.window_end, tz=SHANGHAI
    )


def test_a_program_without_template_fields_is_requested_once(session: Session, settings: Settings) -> None:
    small_city(session)
    revision = playlist_revision(session)
    assert _plan(session, settings, revision, {"all": True}) == 1
    assert len(_queued(session, revision)) == 1
    request_slot_programs(
        session, window_start=NOW, window_end=datetime(2026, 6, 4, tzinfo=SHANGHAI), tz=SHANGHAI
    )
    assert len(_queued(session, revision)) == 1, "asking again finds the queued render"


def test_a_village_bulletin_is_requested_once_per_village(session: Session, settings: Settings) -> None:
    city = small_city(session)
    revision = playlist_revision(session)
    _with_bulletin(session, revision, "{village}的村民朋友们，请注意防火。")
    reached = [city.villages[0].code, city.villages[1].code]
    assert _plan(session, settings, revision, {"villages": reached}) == 2
    contexts = sorted(render.context["village"] for render in _queued(session, revision))
    assert contexts == sorted(reached)


def test_a_dated_bulletin_is_requested_per_day(session: Session, settings: Settings) -> None:
    city = small_city(session)
    revision = playlist_revision(session)
    _with_bulletin(session, revision, "今天是{date}，请注意防汛。")
    assert _plan(session, settings, revision, {"villages": [city.villages[0].code]}) == 3
    days = sorted(render.context["date"] for render in _queued(session, revision))
    assert days == ["2026-06-01", "2026-06-02", "2026-06-03"]
