"""What the campaign editor offers: playlists and their revisions with the custom fields their
bulletins ask for, and the target picker's town → village tree, tags and saved groups (with the
names a stored selector is described by)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from sqlmodel import Session

from broadcast.console.campaign_form import LABELS
from broadcast.errors import BroadcastError
from broadcast.pagination import MAX_LIMIT, PageParams
from broadcast.playlists import renders
from broadcast.playlists import service as playlists
from broadcast.playlists.models import Playlist, PlaylistRevision
from broadcast.regions import service as regions
from broadcast.regions.models import TAG_LABELS, Town, TownKind
from broadcast.regions.schemas import VillageOut
from broadcast.targets import service as targets

ALL = PageParams(limit=MAX_LIMIT, offset=0)


@dataclass(frozen=True)
class PickerChoices:
    """The town → village tree, tags and saved groups, with names for describing a selector."""

    tree: list[tuple[Town, list[VillageOut]]]
    tags: dict[str, str]
    groups: list[str]

    def names(self) -> dict[str, dict[str, str]]:
        villages = {v.code: v.name for _, group in self.tree for v in group}
        towns = {
            t.code: t.name + ("（街道）" if t.kind == TownKind.subdistrict else "") for t, _ in self.tree
        }
        return {"towns": towns, "villages": villages, "tags": self.tags}


def picker_choices(session: Session) -> PickerChoices:
    villages = regions.list_villages(session, scope=None, town=None)
    by_town = {code: list(group) for code, group in groupby(villages, key=lambda v: v.town_code)}
    towns = regions.list_towns(session, scope=None)
    groups = [group.name for group in targets.list_groups(session, params=ALL)[1]]
    return PickerChoices(
        tree=[(town, by_town.get(town.code, [])) for town in towns], tags=dict(TAG_LABELS), groups=groups
    )


def describe_target(selector: Mapping[str, Any], names: dict[str, dict[str, str]]) -> str:
    """The selector in words, e.g. "标签：林区；排除 乡镇（街道）：城关街道（街道）"."""

    def clause(part: Mapping[str, Any]) -> list[str]:
        lines = []
        for kind in ("towns", "villages", "tags", "groups", "endpoints"):
            values = part.get(kind) or []
            if values:
                shown = [names.get(kind, {}).get(value, value) for value in values]
                lines.append(f"{LABELS[kind]}：{'、'.join(shown)}")
        return lines

    included = (["全市"] if selector.get("all") else []) + clause(selector)
    excluded = clause(selector.get("exclude") or {})
    text = "；".join(included) or "—"
    return f"{text}；排除 {'；'.join(excluded)}" if excluded else text


@dataclass(frozen=True)
class PlaylistChoice:
    """The revisions of the chosen playlist and the custom fields its bulletins ask for."""

    revisions: list[PlaylistRevision]
    fields: list[str]


def playlist_choice(session: Session, playlist_id: str, revision: str) -> PlaylistChoice:
    if not playlist_id.isdigit():
        return PlaylistChoice([], [])
    try:
        playlist = playlists.get_playlist_or_raise(session, int(playlist_id))
        number = int(revision) if revision.isdigit() else playlist.current_revision
        chosen = playlists.get_revision_or_raise(session, playlist=playlist, number=number)
    except BroadcastError:
        return PlaylistChoice([], [])
    fields = sorted({name for b in renders.bulletins_of(session, chosen) for name in b.custom_fields})
    return PlaylistChoice(list(reversed(playlists.list_revisions(session, playlist=playlist))), fields)


def all_playlists(session: Session) -> list[Playlist]:
    return playlists.list_playlists(session, q=None, params=ALL)[1]
