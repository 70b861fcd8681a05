"""The endpoint list page: its query string, the page of results and the filter choices."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from math import ceil
from urllib.parse import urlencode

from pydantic import BaseModel, Field
from sqlmodel import Session

from broadcast.dispatch.presence import Connectivity, connectivity
from broadcast.pagination import PageParams
from broadcast.regions import service as regions
from broadcast.regions.models import EndpointStatus, Town
from broadcast.regions.schemas import EndpointFilters, EndpointOut, VillageOut

PAGE_SIZE = 50
PAGE_URL = "/console/endpoints"
POLL_URL = "/console/endpoints/presence"

STATUS_LABELS = {
    EndpointStatus.online.value: "在线",
    EndpointStatus.offline.value: "离线",
    EndpointStatus.fault.value: "故障",
    EndpointStatus.disabled.value: "停用",
}


class EndpointQuery(BaseModel):
    """The page's query string; an empty select sends ``town=`` and means no filter."""

    town: str = Field(default="", max_length=12)
    village: str = Field(default="", max_length=12)
    tag: str = Field(default="", max_length=32)
    status: str = Field(default="", max_length=16)
    q: str = Field(default="", max_length=64)
    page: int = Field(default=1, ge=1, le=100_000)

    def filters(self) -> EndpointFilters:
        return EndpointFilters(
            town=self.town or None,
            village=self.village or None,
            tag=self.tag or None,
            status=self.status or None,
            q=self.q.strip() or None,
        )

    def url(self, page: int) -> str:
        """This query on another page, without the empty filters a form submits."""
        values = {**self.model_dump(exclude={"page"}), "page": page if page > 1 else None}
        params = {key: value for key, value in values.items() if value}
        return f"{PAGE_URL}?{urlencode(params)}" if params else PAGE_URL


@dataclass(frozen=True)
class EndpointListing:
    total: int
    items: list[EndpointOut]
    url: str
    page: int
    pages: int
    prev_url: str | None
    next_url: str | None
    live: dict[str, Connectivity]

    @property
    def poll_url(self) -> str:
        """The same results for the live-presence poll (which leaves the address bar alone)."""
        return POLL_URL + self.url.removeprefix(PAGE_URL)


def list_page(session: Session, *, query: EndpointQuery, scope: frozenset[int] | None) -> EndpointListing:
    params = PageParams(limit=PAGE_SIZE, offset=(query.page - 1) * PAGE_SIZE)
    total, items = regions.list_endpoints(session, filters=query.filters(), scope=scope, params=params)
    pages = max(1, ceil(total / PAGE_SIZE))
    return EndpointListing(
        total=total,
        items=items,
        url=query.url(query.page),
        page=query.page,
        pages=pages,
        prev_url=query.url(min(query.page - 1, pages)) if query.page > 1 else None,
        next_url=query.url(query.page + 1) if query.page < pages else None,
        live=connectivity(session, codes=[item.code for item in items]),
    )


@dataclass(frozen=True)
class FilterChoices:
    towns: list[Town]
    village_groups: list[tuple[str, list[VillageOut]]]


def filter_choices(session: Session, *, scope: frozenset[int] | None, town: str) -> FilterChoices:
    return FilterChoices(
        towns=regions.list_towns(session, scope=scope),
        village_groups=village_groups(session, scope=scope, town=town),
    )


def village_groups(
    session: Session, *, scope: frozenset[int] | None, town: str
) -> list[tuple[str, list[VillageOut]]]:
    """The villages to choose from, grouped by town in code order (one group once a town is chosen)."""
    villages = regions.list_villages(session, scope=scope, town=town or None)
    by_town = sorted(villages, key=lambda v: v.town_code)
    return [(name, list(group)) for name, group in groupby(by_town, key=lambda v: v.town_name)]
