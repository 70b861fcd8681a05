"""Check a campaign file against the database (reading only) and turn it into a plan: what it wants,
resolved to ids, next to what exists. ``broadcast schedules check`` stops here; apply diffs the plan.

Validation is the campaigns service's own (``scheduling.checks``: recurrence, windows, selector), run
on the file's values, so a file passes check exactly when the API would accept the same campaign.

Identity: the campaign by ``key``; the playlist by its unique name; the file's bulletins match, in
order of first use in the playlist, the distinct bulletins of the revision the campaign plays
(or of the playlist's newest revision), so a changed title or text is an edit, not a new bulletin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import partial
from typing import Any

from sqlmodel import Session, col, select

from broadcast.bulletins import templates
from broadcast.config import Settings
from broadcast.content.chimes import BUILTIN_CHIMES
from broadcast.content.models import Bulletin, Chime, Clip
from broadcast.errors import BroadcastError
from broadcast.playlists.models import ItemKind, Playlist, PlaylistItem, PlaylistRevision
from broadcast.playlists.service import items_of
from broadcast.scheduling.checks import (
    build_recurrence,
    check_plays,
    check_selector,
    check_times_in_windows,
    check_windows,
    season_of,
)
from broadcast.scheduling.files import (
    CHIME_ALIASES,
    BulletinSpec,
    FileError,
    Loaded,
    Problem,
    RecurrenceSpec,
    place_day,
    resolve_season,
)
from broadcast.scheduling.models import Campaign
from broadcast.scheduling.recurrence import SHANGHAI, Recurrence
from broadcast.scheduling.schemas import RecurrenceIn, SeasonIn
from broadcast.scheduling.service import get_campaign_by_key

BUILTIN_KEYS = frozenset(spec.key for spec in BUILTIN_CHIMES)
Item = tuple[
    ItemKind, int | None, int | None, int
]  # kind, reference id (None: new bulletin), silence_ms, repeat


@dataclass
class Plan:
    """A checked file: the wanted values (resolved) and the rows that exist for it."""

    loaded: Loaded
    campaign: Campaign | None
    playlist: Playlist | None
    bulletins: list[tuple[BulletinSpec, Bulletin | None]]
    items: list[Item]
    season: SeasonIn | None
    recurrence: RecurrenceIn
    exception_dates: list[date]
    rule: Recurrence
    windows: list[str]
    selector: dict[str, Any]
    refs: dict[str, int | None] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.loaded.spec.key


class _Collector:
    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded
        self.problems: list[Problem] = []

    def run(self, check: Callable[[], Any], *loc: str | int) -> Any:
        """The check's result, or None after recording its refusal at ``loc``."""
        try:
            return check()
        except BroadcastError as exc:
            self.problems.append(self.loaded.problem(exc.message, *loc))
        except ValueError as exc:
            self.problems.append(self.loaded.problem(str(exc), *loc))
        return None


def check_file(session: Session, loaded: Loaded, *, today: date, settings: Settings) -> Plan:
    """The plan of one schema-valid file; :class:`FileError` lists every problem with its line."""
    spec, found = loaded.spec, _Collector(loaded)
    order = _bulletin_order(found)
    _check_bulletins(found, settings)
    season = found.run(lambda: resolve_season(spec.season, today=today) if spec.season else None, "season")
    days = [
        found.run(partial(place_day, text, season), "exception_dates", i)
        for i, text in enumerate(spec.exception_dates)
    ]
    recurrence = found.run(lambda: _recurrence_in(spec.recurrence, season), "recurrence")
    windows = found.run(lambda: check_windows(spec.windows), "windows")
    selector = found.run(lambda: check_selector(session, spec.target), "target")
    rule = None
    if recurrence is not None and None not in days and (season is not None or spec.season is None):
        rule = found.run(lambda: _rule(recurrence, season, days, windows), "recurrence")
    campaign = get_campaign_by_key(session, spec.key)
    playlist = _playlist(session, found, campaign)
    refs = _refs(session, found)
    if found.problems or rule is None or windows is None or selector is None:
        raise FileError(found.problems)
    bulletins = _match_bulletins(session, order, campaign, playlist)
    return Plan(
        loaded=loaded,
        campaign=campaign,
        playlist=playlist,
        bulletins=bulletins,
        items=_items(loaded, bulletins, refs),
        season=None if season is None else SeasonIn(first=season[0], last=season[1]),
        recurrence=recurrence,
        exception_dates=sorted(set(days)),
        rule=rule,
        windows=windows,
        selector=selector,
        refs=refs,
    )


def _bulletin_order(found: _Collector) -> list[BulletinSpec]:
    """Declared bulletins in order of first use; unknown references and unused bulletins are problems."""
    content = found.loaded.spec.content
    declared: dict[str, BulletinSpec] = {}
    for index, bulletin in enumerate(content.bulletins):
        if bulletin.key in declared:
            found.problems.append(
                found.loaded.problem(
                    f"文字稿 key「{bulletin.key}」重复", "content", "bulletins", index, "key"
                )
            )
        declared.setdefault(bulletin.key, bulletin)
    used: dict[str, BulletinSpec] = {}
    for index, item in enumerate(content.playlist.items):
        if item.bulletin is None:
            continue
        if item.bulletin not in declared:
            names = "、".join(declared) or "（本文件没有声明文字稿）"
            message = f"引用的文字稿「{item.bulletin}」未在 content.bulletins 中声明；已声明：{names}"
            found.problems.append(
                found.loaded.problem(message, "content", "playlist", "items", index, "bulletin")
            )
        else:
            used.setdefault(item.bulletin, declared[item.bulletin])
    for index, bulletin in enumerate(content.bulletins):
        if bulletin.key not in used:
            message = f"文字稿「{bulletin.key}」没有被节目单使用：请在 playlist.items 中引用或删去"
            found.problems.append(found.loaded.problem(message, "content", "bulletins", index))
    return list(used.values())


def _check_bulletins(found: _Collector, settings: Settings) -> None:
    """Templates parse and use declared fields; every custom field has a value in field_values."""
    spec = found.loaded.spec
    for index, bulletin in enumerate(spec.content.bulletins):
        loc = ("content", "bulletins", index, "text")
        if len(bulletin.text) > settings.bulletin_max_chars:
            message = f"文字稿过长：{len(bulletin.text)} 个字符，上限 {settings.bulletin_max_chars}"
            found.problems.append(found.loaded.problem(message, *loc))
        check = partial(templates.validate_template, bulletin.text, bulletin.custom_fields)
        used: list[str] = found.run(check, *loc) or []
        missing = [
            name
            for name in used
            if name in bulletin.custom_fields and not spec.field_values.get(name, "").strip()
        ]
        if missing:
            message = f"文字稿用到自定义字段 {'、'.join(missing)}，请在 field_values 中给出它们的值"
            found.problems.append(found.loaded.problem(message, "field_values"))


def _recurrence_in(spec: RecurrenceSpec, season: tuple[date, date] | None) -> RecurrenceIn:
    values = spec.model_dump(exclude_defaults=True)
    if spec.dates:
        values["dates"] = [place_day(text, season) for text in spec.dates]
    if spec.dtstart is not None:
        values["dtstart"] = _dtstart(spec.dtstart, season)
    return RecurrenceIn.model_validate(values)


def _dtstart(text: str, season: tuple[date, date] | None) -> datetime:
    """HH:MM on the season's first day (local time), or an ISO datetime with its offset."""
    if len(text) == len("06:40") and ":" in text:
        if season is None:
            raise ValueError("dtstart 只写了时刻 HH:MM，需要季节 season 来确定日期；或写成完整的带时区时间")
        return datetime.combine(season[0], time.fromisoformat(text), SHANGHAI)
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"dtstart {text} 缺少时区：请写成 2026-10-01T06:40:00+08:00，或只写时刻 06:40")
    return value


def _rule(
    recurrence: RecurrenceIn, season: tuple[date, date] | None, days: list[date], windows: list[str] | None
) -> Recurrence:
    bound = None if season is None else season_of(*season)
    rule = build_recurrence(recurrence, season=bound, exception_days=frozenset(days))
    if windows is not None:
        check_times_in_windows(rule, windows)
    check_plays(rule)
    return rule


def _playlist(session: Session, found: _Collector, campaign: Campaign | None) -> Playlist | None:
    name = found.loaded.spec.content.playlist.name
    playlist = session.exec(select(Playlist).where(Playlist.name == name)).first()
    if playlist is None:
        return None
    owner = session.exec(select(Campaign).where(Campaign.playlist_id == playlist.id)).first()
    if owner is not None and (campaign is None or owner.id != campaign.id):
        message = f"节目单“{name}”已被宣传计划 {owner.key}（“{owner.name}”）使用：请换一个节目单名称"
        found.problems.append(found.loaded.problem(message, "content", "playlist", "name"))
    return playlist


def _refs(session: Session, found: _Collector) -> dict[str, int | None]:
    """Chime and clip references by their file text; unknown ones are problems."""
    refs: dict[str, int | None] = {}
    for index, item in enumerate(found.loaded.spec.content.playlist.items):
        loc = ("content", "playlist", "items", index)
        if item.chime is not None:
            chime_key = CHIME_ALIASES.get(item.chime, item.chime)
            chime_id = session.exec(select(Chime.id).where(Chime.key == chime_key)).first()
            if chime_id is None and chime_key not in BUILTIN_KEYS:
                message = f"提示音「{item.chime}」不存在；内置提示音写 attention 或 closing"
                found.problems.append(found.loaded.problem(message, *loc, "chime"))
            else:
                refs[f"chime:{item.chime}"] = chime_id  # None: a built-in that apply generates first
        if item.clip is not None:
            clip_id = session.exec(select(Clip.id).where(Clip.source_sha256 == item.clip)).first()
            if clip_id is None:
                message = "录音不存在：clip 写上传原文件的 sha256，请先上传该录音"
                found.problems.append(found.loaded.problem(message, *loc, "clip"))
            else:
                refs[f"clip:{item.clip}"] = clip_id
    return refs


def source_revision(
    session: Session, campaign: Campaign | None, playlist: Playlist | None
) -> PlaylistRevision | None:
    """The revision a file is compared with: the campaign's own if it plays this playlist, else the newest."""
    if playlist is None:
        return None
    if campaign is not None and campaign.playlist_id == playlist.id:
        return session.get_one(PlaylistRevision, campaign.revision_id)
    query = select(PlaylistRevision).where(
        PlaylistRevision.playlist_id == playlist.id, PlaylistRevision.number == playlist.current_revision
    )
    return session.exec(query).one()


def bulletins_in_order(session: Session, items: list[PlaylistItem]) -> list[Bulletin]:
    """The distinct bulletins of a revision's items, in order of first use."""
    ids = list(dict.fromkeys(item.bulletin_id for item in items if item.bulletin_id is not None))
    rows = (
        {b.id: b for b in session.exec(select(Bulletin).where(col(Bulletin.id).in_(ids))).all()}
        if ids
        else {}
    )
    return [rows[i] for i in ids]


def _match_bulletins(
    session: Session, order: list[BulletinSpec], campaign: Campaign | None, playlist: Playlist | None
) -> list[tuple[BulletinSpec, Bulletin | None]]:
    revision = source_revision(session, campaign, playlist)
    existing = [] if revision is None else bulletins_in_order(session, items_of(session, revision))
    return [(spec, existing[i] if i < len(existing) else None) for i, spec in enumerate(order)]


def _items(
    loaded: Loaded, bulletins: list[tuple[BulletinSpec, Bulletin | None]], refs: dict[str, int | None]
) -> list[Item]:
    ids = {spec.key: (row.id if row is not None else None) for spec, row in bulletins}
    items: list[Item] = []
    for item in loaded.spec.content.playlist.items:
        if item.bulletin is not None:
            items.append((ItemKind.bulletin, ids[item.bulletin], None, item.repeat))
        elif item.chime is not None:
            items.append((ItemKind.chime, refs[f"chime:{item.chime}"], None, item.repeat))
        elif item.clip is not None:
            items.append((ItemKind.clip, refs[f"clip:{item.clip}"], None, item.repeat))
        else:
            items.append((ItemKind.silence, None, item.silence_ms, item.repeat))
    return items


def revision_items(items: list[PlaylistItem]) -> list[Item]:
    """A stored revision's items in the plan's shape, for comparison."""
    return [(i.kind, i.clip_id or i.bulletin_id or i.chime_id, i.silence_ms, i.repeat) for i in items]
