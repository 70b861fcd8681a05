"""The console's sections: one data-driven list, so a feature adds its page by adding one entry."""

from __future__ import annotations

from dataclasses import dataclass

from broadcast.auth.models import Role


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    url: str
    roles: frozenset[Role]
    # Roles for whom this page leads the navigation and is where the login lands.
    home_of: frozenset[Role] = frozenset()

    def allows(self, role: Role) -> bool:
        # Admins may open every page, as require_roles grants them every API.
        return role == Role.admin or role in self.roles


EVERYONE = frozenset(Role)
CONTENT_STAFF = frozenset({Role.propagandist, Role.admin})
# Duty officers may read campaigns (as the API lets them); only content staff change them.
STAFF = frozenset({Role.propagandist, Role.duty_officer, Role.admin})
DUTY = frozenset({Role.duty_officer, Role.admin})

# The alert desk comes first: it is what a duty officer opens the console for.
SECTIONS: list[Section] = [
    Section(key="alerts", title="预警中心", url="/console/alerts", roles=DUTY),
    Section(key="dashboard", title="概览", url="/console/", roles=EVERYONE),
    Section(key="endpoints", title="终端", url="/console/endpoints", roles=EVERYONE),
    Section(key="library", title="素材库", url="/console/library", roles=CONTENT_STAFF),
    Section(key="bulletins", title="文字稿", url="/console/bulletins", roles=CONTENT_STAFF),
    Section(key="playlists", title="节目单", url="/console/playlists", roles=CONTENT_STAFF),
    Section(key="campaigns", title="宣传计划", url="/console/campaigns", roles=STAFF),
    Section(key="calendar", title="播出日历", url="/console/calendar", roles=STAFF),
    Section(key="rundowns", title="播出查询", url="/console/rundowns", roles=EVERYONE),
    # A village admin opens the console to see what her speakers actually played.
    Section(
        key="playlog",
        title="播放记录",
        url="/console/playlog",
        roles=EVERYONE,
        home_of=frozenset({Role.village_admin}),
    ),
    Section(key="reports", title="统计报表", url="/console/reports", roles=EVERYONE),
]


def visible_sections(role: Role) -> list[Section]:
    allowed = [section for section in SECTIONS if section.allows(role)]
    return sorted(allowed, key=lambda section: role not in section.home_of)


def home_url(role: Role) -> str | None:
    """Where the login lands when no page was asked for (None: the overview)."""
    for section in SECTIONS:
        if role in section.home_of:
            return section.url
    return None


def section_named(key: str) -> Section:
    for section in SECTIONS:
        if section.key == key:
            return section
    raise KeyError(key)
