"""Calendar feeds (.ics): one campaign, or every campaign reaching a village.

Any logged-in user reads them; a village admin only her own villages' feed and the feeds of
campaigns that reach one of her villages.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from broadcast.deps import ScopeDep, SessionDep
from broadcast.scheduling import ics

ics_router = APIRouter(tags=["campaigns"])


def _calendar(feed: ics.Feed) -> Response:
    headers = {"Content-Disposition": f'inline; filename="{feed.filename}"'}
    return Response(content=feed.body, media_type=ics.MEDIA_TYPE, headers=headers)


@ics_router.get("/campaigns/{campaign_id}/calendar.ics", response_class=Response)
def campaign_calendar(campaign_id: int, session: SessionDep, scope: ScopeDep) -> Response:
    """The campaign as an iCalendar event (RRULE, EXDATE, program duration) for any calendar app."""
    return _calendar(ics.campaign_feed(session, campaign_id=campaign_id, scope=scope))


@ics_router.get("/villages/{code}/calendar.ics", response_class=Response)
def village_calendar(code: str, session: SessionDep, scope: ScopeDep) -> Response:
    """Every approved, active or paused campaign whose target reaches the village."""
    return _calendar(ics.village_feed(session, code=code, scope=scope))
