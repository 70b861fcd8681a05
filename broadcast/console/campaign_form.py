"""The campaign editor's form (宣传计划): the fields as typed, the API body they become, and back.

The form keeps what the person typed (so a refused form comes back as it was) and turns it into
the same body the API takes (:class:`CampaignCreate`), so the service checks it exactly once. A
stored campaign is shown with the preset that reproduces its recurrence, or as raw RRULE when none
does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, tzinfo
from typing import Annotated, Any

from fastapi import Depends, Form

from broadcast.scheduling.models import Campaign
from broadcast.scheduling.presets import daily_at, every_n_days, on_dates, times_of_day, weekdays_at
from broadcast.scheduling.recurrence import Recurrence, SchedulingError
from broadcast.scheduling.schemas import DEFAULT_WINDOWS
from broadcast.scheduling.service import recurrence_of

PRIORITIES = {3: "低", 5: "普通", 7: "高", 9: "紧急"}
PRESETS = {
    "daily": "每天",
    "weekdays": "工作日",
    "every_n_days": "每 N 天",
    "dates": "指定日期",
    "rrule": "高级（RRULE）",
}
LABELS = {
    "name": "名称",
    "description": "说明",
    "playlist_id": "节目单",
    "revision": "节目单版本",
    "selector": "播发范围",
    "exclude": "排除",
    "towns": "乡镇（街道）",
    "villages": "村（社区）",
    "tags": "标签",
    "groups": "分组",
    "endpoints": "终端代码",
    "season": "季节",
    "first": "开始日期",
    "last": "结束日期",
    "recurrence": "重复规则",
    "times": "播出时间",
    "n": "间隔天数",
    "dates": "指定日期",
    "dtstart": "起始时间",
    "rrule": "RRULE",
    "windows": "播出时段",
    "priority": "优先级",
    "max_plays_per_day": "每日最多播放次数",
    "exception_dates": "例外日",
    "field_values": "自定义字段",
}
_SEPARATORS = re.compile(r"[\s,，、;；]+")


def split_list(text: str) -> list[str]:
    """Values typed in one box, separated by spaces or (Chinese) commas."""
    return [part for part in _SEPARATORS.split(text) if part]


@dataclass(frozen=True)
class TargetForm:
    """The target picker's choices: included towns, villages, tags, groups, codes, and exclusions."""

    all: bool = False
    towns: tuple[str, ...] = ()
    villages: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    endpoints: str = ""
    exclude_towns: tuple[str, ...] = ()
    exclude_villages: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    exclude_groups: tuple[str, ...] = ()
    exclude_endpoints: str = ""

    def selector(self) -> dict[str, Any]:
        exclude = {
            "towns": list(self.exclude_towns),
            "villages": list(self.exclude_villages),
            "tags": list(self.exclude_tags),
            "groups": list(self.exclude_groups),
            "endpoints": split_list(self.exclude_endpoints),
        }
        return {
            "all": self.all,
            "towns": list(self.towns),
            "villages": list(self.villages),
            "tags": list(self.tags),
            "groups": list(self.groups),
            "endpoints": split_list(self.endpoints),
            "exclude": exclude,
        }

    @classmethod
    def of(cls, selector: Mapping[str, Any]) -> TargetForm:
        exclude: Mapping[str, Any] = selector.get("exclude") or {}
        return cls(
            all=bool(selector.get("all")),
            towns=tuple(selector.get("towns") or ()),
            villages=tuple(selector.get("villages") or ()),
            tags=tuple(selector.get("tags") or ()),
            groups=tuple(selector.get("groups") or ()),
            endpoints="，".join(selector.get("endpoints") or ()),
            exclude_towns=tuple(exclude.get("towns") or ()),
            exclude_villages=tuple(exclude.get("villages") or ()),
            exclude_tags=tuple(exclude.get("tags") or ()),
            exclude_groups=tuple(exclude.get("groups") or ()),
            exclude_endpoints="，".join(exclude.get("endpoints") or ()),
        )


Picks = Annotated[list[str], Form()]


def target_form(
    all: Annotated[bool, Form()] = False,
    towns: Picks = [],  # noqa: B006 - FastAPI copies defaults
    villages: Picks = [],  # noqa: B006
    tags: Picks = [],  # noqa: B006
    groups: Picks = [],  # noqa: B006
    endpoints: Annotated[str, Form(max_length=20_000)] = "",
    exclude_towns: Picks = [],  # noqa: B006
    exclude_villages: Picks = [],  # noqa: B006
    exclude_tags: Picks = [],  # noqa: B006
    exclude_groups: Picks = [],  # noqa: B006
    exclude_endpoints: Annotated[str, Form(max_length=20_000)] = "",
) -> TargetForm:
    return TargetForm(
        all=all,
        towns=tuple(towns),
        villages=tuple(villages),
        tags=tuple(tags),
        groups=tuple(groups),
        endpoints=endpoints,
        exclude_towns=tuple(exclude_towns),
        exclude_villages=tuple(exclude_villages),
        exclude_tags=tuple(exclude_tags),
        exclude_groups=tuple(exclude_groups),
        exclude_endpoints=exclude_endpoints,
    )


@dataclass(frozen=True)
class CampaignForm:
    """Every editor field as text, so a refused form is shown again exactly as typed."""

    name: str = ""
    description: str = ""
    playlist_id: str = ""
    revision: str = ""
    target: TargetForm = field(default_factory=TargetForm)
    season_first: str = ""
    season_last: str = ""
    preset: str = "daily"
    times: str = ""
    n: str = "2"
    dates: str = ""
    dtstart: str = ""
    rrule: str = ""
    rdates: tuple[str, ...] = ()
    exdates: tuple[str, ...] = ()
    windows: str = "，".join(DEFAULT_WINDOWS)
    priority: str = "5"
    max_plays_per_day: str = "3"
    exception_dates: str = ""
    fields: tuple[tuple[str, str], ...] = ()

    def body(self, tz: tzinfo) -> dict[str, Any]:
        """The API's campaign body (create and update take the same fields)."""
        season = None
        if self.season_first or self.season_last:
            season = {"first": self.season_first, "last": self.season_last}
        return {
            "name": self.name.strip(),
            "description": self.description.strip(),
            "playlist_id": self.playlist_id,
            "revision": self.revision or None,
            "selector": self.target.selector(),
            "season": season,
            "recurrence": self.recurrence(tz),
            "windows": split_list(self.windows),
            "priority": self.priority,
            "max_plays_per_day": self.max_plays_per_day,
            "exception_dates": split_list(self.exception_dates),
            "field_values": {name: value.strip() for name, value in self.fields if value.strip()},
        }

    def recurrence(self, tz: tzinfo) -> dict[str, Any]:
        if self.preset == "rrule":
            return {
                "dtstart": _local(self.dtstart, tz),
                "rrule": self.rrule.strip() or None,
                "rdates": list(self.rdates),
                "exdates": list(self.exdates),
            }
        body: dict[str, Any] = {"preset": self.preset, "times": split_list(self.times)}
        if self.preset == "every_n_days":
            body["n"] = self.n
        if self.preset == "dates":
            body["dates"] = split_list(self.dates)
        return body

    def field_value(self, name: str) -> str:
        return dict(self.fields).get(name, "")

    @classmethod
    def of(cls, campaign: Campaign, *, revision: int, tz: tzinfo) -> CampaignForm:
        rule = recurrence_of(campaign, tz=tz)
        return cls(
            name=campaign.name,
            description=campaign.description,
            playlist_id=str(campaign.playlist_id),
            revision=str(revision),
            target=TargetForm.of(campaign.selector),
            season_first=campaign.season_start.isoformat(),
            season_last=campaign.season_end.isoformat(),
            windows="，".join(campaign.windows),
            priority=str(campaign.priority),
            max_plays_per_day=str(campaign.max_plays_per_day),
            exception_dates="，".join(campaign.exception_dates),
            fields=tuple(campaign.field_values.items()),
            **(_preset_fields(rule) or _raw_fields(rule, campaign)),
        )


def _local(text: str, tz: tzinfo) -> datetime | str | None:
    """A datetime-local value read as the city's wall time; anything else is left to the schema."""
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return text
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _clock_text(clock: tuple[time, ...]) -> str:
    return "，".join(at.strftime("%H:%M") for at in clock)


def _attempt(build: Callable[[], Recurrence]) -> Recurrence | None:
    try:
        return build()
    except SchedulingError:
        return None


def _preset_fields(rule: Recurrence) -> dict[str, str] | None:
    """The preset that rebuilds exactly this recurrence, if one does."""
    if rule.exdates or rule.season is None:
        return None
    season, tz, days = rule.season, rule.tz, rule.exception_days
    if rule.rrule is None:
        local = sorted(at.astimezone(tz) for at in {rule.dtstart, *rule.rdates})
        clock = tuple(sorted({at.time() for at in local}))
        dates = sorted({at.date() for at in local})
        same = _attempt(lambda: on_dates(dates, clock, tz=tz, exception_days=days))
        if same is None or {same.dtstart, *same.rdates} != {rule.dtstart, *rule.rdates}:
            return None
        return {"preset": "dates", "times": _clock_text(clock), "dates": "，".join(map(str, dates))}
    clock = times_of_day(rule)
    interval = int(rule.parts.get("INTERVAL", "1"))
    candidates: dict[str, Callable[[], Recurrence]] = {
        "daily": lambda: daily_at(clock, season=season, tz=tz, exception_days=days),
        "weekdays": lambda: weekdays_at(clock, season=season, tz=tz, exception_days=days),
        "every_n_days": lambda: every_n_days(interval, clock, season=season, tz=tz, exception_days=days),
    }
    for preset, build in candidates.items():
        same = _attempt(build)
        if same is not None and (same.rrule, same.dtstart) == (rule.rrule, rule.dtstart):
            return {"preset": preset, "times": _clock_text(clock), "n": str(interval)}
    return None


def _raw_fields(rule: Recurrence, campaign: Campaign) -> dict[str, Any]:
    return {
        "preset": "rrule",
        "dtstart": rule.dtstart.strftime("%Y-%m-%dT%H:%M"),
        "rrule": rule.rrule or "",
        "rdates": tuple(campaign.rdates),
        "exdates": tuple(campaign.exdates),
    }


def campaign_form(
    target: Annotated[TargetForm, Depends(target_form)],
    name: Annotated[str, Form(max_length=1000)] = "",
    description: Annotated[str, Form(max_length=5000)] = "",
    playlist_id: Annotated[str, Form(max_length=20)] = "",
    revision: Annotated[str, Form(max_length=20)] = "",
    season_first: Annotated[str, Form(max_length=40)] = "",
    season_last: Annotated[str, Form(max_length=40)] = "",
    preset: Annotated[str, Form(max_length=20)] = "daily",
    times: Annotated[str, Form(max_length=2000)] = "",
    n: Annotated[str, Form(max_length=20)] = "",
    dates: Annotated[str, Form(max_length=20_000)] = "",
    dtstart: Annotated[str, Form(max_length=60)] = "",
    rrule: Annotated[str, Form(max_length=2000)] = "",
    rdates: Picks = [],  # noqa: B006 - FastAPI copies defaults
    exdates: Picks = [],  # noqa: B006
    windows: Annotated[str, Form(max_length=2000)] = "",
    priority: Annotated[str, Form(max_length=20)] = "5",
    max_plays_per_day: Annotated[str, Form(max_length=20)] = "3",
    exception_dates: Annotated[str, Form(max_length=20_000)] = "",
    field_name: Picks = [],  # noqa: B006
    field_value: Picks = [],  # noqa: B006
) -> CampaignForm:
    return CampaignForm(
        name=name,
        description=description,
        playlist_id=playlist_id,
        revision=revision,
        target=target,
        season_first=season_first,
        season_last=season_last,
        preset=preset,
        times=times,
        n=n,
        dates=dates,
        dtstart=dtstart,
        rrule=rrule,
        rdates=tuple(rdates),
        exdates=tuple(exdates),
        windows=windows,
        priority=priority,
        max_plays_per_day=max_plays_per_day,
        exception_dates=exception_dates,
        fields=tuple(zip(field_name, field_value, strict=False)),
    )
