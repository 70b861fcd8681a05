"""The overview's numbers, for the whole city or a village admin's villages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from broadcast.pagination import PageParams
from broadcast.regions import service as regions
from broadcast.regions.models import EndpointStatus
from broadcast.regions.schemas import EndpointFilters

_COUNT_ONLY = PageParams(limit=1, offset=0)


@dataclass(frozen=True)
class DashboardCounts:
    towns: int
    villages: int
    endpoints: int
    online: int

    @property
    def online_rate(self) -> str:
        if not self.endpoints:
            return "—"
        return f"{self.online / self.endpoints:.1%}"


def dashboard_counts(session: Session, *, scope: frozenset[int] | None) -> DashboardCounts:
    online = EndpointFilters(status=EndpointStatus.online.value)
    endpoints, _ = regions.list_endpoints(session, filters=EndpointFilters(), scope=scope, params=_COUNT_ONLY)
    online_count, _ = regions.list_endpoints(session, filters=online, scope=scope, params=_COUNT_ONLY)
    return DashboardCounts(
        towns=len(regions.list_towns(session, scope=scope)),
        villages=len(regions.list_villages(session, scope=scope, town=None)),
        endpoints=endpoints,
        online=online_count,
    )
