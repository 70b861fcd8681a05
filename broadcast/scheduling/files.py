"""The city's calendar as files: the YAML schema of ``schedules/*.yaml``, loading with line numbers,
and the resolution of recurring seasons (pure: no database, the reference date is an argument).

One file is one campaign with its content inline (bulletins and the playlist), so the whole year
can be rebuilt from the folder. ``schedules/README.md`` documents the format; the checks that need
the database live in :mod:`broadcast.scheduling.files_check`, applying and exporting in
:mod:`broadcast.scheduling.files_apply` and :mod:`broadcast.scheduling.files_export`.

YAML is read with a loader that keeps ``12:00`` and ``10-01`` as text (YAML 1.1 would read the
first as the sexagesimal number 720) and ``0123`` as text (not octal), and it reports duplicate
keys, which PyYAML would otherwise silently overwrite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from broadcast.bulletins.schemas import MAX_CUSTOM_FIELDS
from broadcast.playlists.schemas import MAX_ITEMS, SILENCE_MAX_MS, SILENCE_MIN_MS
from broadcast.scheduling.schemas import DEFAULT_WINDOWS, MAX_DATES, Key
from broadcast.targets.schemas import Selector

SUFFIX = ".yaml"
DayText = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^(\d{4}-)?\d{2}-\d{2}$")]
LocalKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
WantedStatus = Literal["draft", "submitted", "approved"]
CHIME_ALIASES = {"attention": "builtin-attention", "closing": "builtin-closing"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file: where (line, field path) and what to do, in Chinese."""

    file: str
    message: str
    line: int | None = None
    field: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


class FileError(Exception):
    """A file that cannot be used; carries every problem found in it."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BulletinSpec(_Spec):
    key: LocalKey = Field(description="文件内的引用名，节目单条目用 {bulletin: key} 引用")
    title: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1)
    custom_fields: list[str] = Field(default_factory=list, max_length=MAX_CUSTOM_FIELDS)
    engine: str | None = Field(default=None, max_length=32)
    voice: str | None = Field(default=None, max_length=64)
    rate: int = Field(default=100, ge=50, le=200)


class ItemSpec(_Spec):
    """Exactly one of chime (key, or attention/closing), bulletin (a key of this file), clip (the
    sha256 of the uploaded source file) or silence_ms."""

    chime: str | None = Field(default=None, min_length=1, max_length=64)
    bulletin: LocalKey | None = None
    clip: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    silence_ms: int | None = Field(default=None, ge=SILENCE_MIN_MS, le=SILENCE_MAX_MS)
    repeat: int = Field(default=1, ge=1, le=20)

    @model_validator(mode="after")
    def _exactly_one(self) -> ItemSpec:
        given = [
            name for name in ("chime", "bulletin", "clip", "silence_ms") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "每个条目必须且只能写 chime、bulletin、clip、silence_ms 之一"
                f"（收到：{'、'.join(given) or '无'}）"
            )
        return self


class PlaylistSpec(_Spec):
    name: str = Field(min_length=1, max_length=128, description="节目单名称（全市唯一，用它找到已有节目单）")
    description: str = Field(default="", max_length=500)
    repeat: int = Field(default=1, ge=1, le=10)
    items: list[ItemSpec] = Field(min_length=1, max_length=MAX_ITEMS)


class ContentSpec(_Spec):
    bulletins: list[BulletinSpec] = Field(default_factory=list)
    playlist: PlaylistSpec


class SeasonSpec(_Spec):
    """Both MM-DD (yearly: the season holding the reference date, else the next one) or both YYYY-MM-DD."""

    first: DayText
    last: DayText


class RecurrenceSpec(_Spec):
    """The API's recurrence: a preset (times, n, dates) or raw RFC 5545 (dtstart, rrule, rdates, exdates).

    ``dates`` may be MM-DD (placed inside the season); ``dtstart`` may be HH:MM (on the season's first day).
    """

    preset: Literal["daily", "weekdays", "every_n_days", "dates"] | None = None
    times: list[str] = Field(default_factory=list, max_length=48)
    n: int | None = Field(default=None, ge=1, le=366)
    dates: list[DayText] = Field(default_factory=list, max_length=MAX_DATES)
    dtstart: str | None = Field(default=None, max_length=40)
    rrule: str | None = Field(default=None, max_length=500)
    rdates: list[str] = Field(default_factory=list, max_length=MAX_DATES)
    exdates: list[str] = Field(default_factory=list, max_length=MAX_DATES)


class CampaignFile(_Spec):
    key: Key
    name: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=1000)
    status: WantedStatus = "draft"
    content: ContentSpec
    target: Selector
    season: SeasonSpec | None = None
    recurrence: RecurrenceSpec
    windows: list[str] = Field(default_factory=lambda: list(DEFAULT_WINDOWS), min_length=1, max_length=12)
    priority: int = Field(default=5, ge=1, le=9)
    max_plays_per_day: int = Field(default=3, ge=1, le=48)
    exception_dates: list[DayText] = Field(default_factory=list, max_length=MAX_DATES)
    field_values: dict[str, str] = Field(default_factory=dict, max_length=50)


@dataclass
class Loaded:
    """A parsed and schema-valid file, with the line of every field path for later messages."""

    path: Path
    spec: CampaignFile
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    def problem(self, message: str, *loc: str | int) -> Problem:
        return Problem(str(self.path), message, _line_of(self.lines, loc), _dotted(loc))


# ---- YAML with line numbers ----


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-like scalars: no sexagesimal or octal ints, no implicit timestamps."""


_REPLACED = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp")
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)


def _walk(
    node: yaml.Node, loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int], problems: list[str]
) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            name = str(key_node.value)
            if name in seen:
                problems.append(f"{key_node.start_mark.line + 1}:{_dotted((*loc, name))}")
            seen.add(name)
            _walk(value_node, (*loc, name), lines, problems)
            lines[(*loc, name)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), lines, problems)


def parse_yaml(path: Path) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """The document and the line of each field path; YAML errors and duplicate keys as problems."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError([Problem(name, f"无法读取文件（须为 UTF-8 文本）：{exc}")]) from exc
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        raise FileError([Problem(name, f"YAML 语法错误：{exc.problem or exc}", line)]) from exc
    except yaml.YAMLError as exc:
        raise FileError([Problem(name, f"YAML 语法错误：{exc}")]) from exc
    lines: dict[tuple[str | int, ...], int] = {}
    duplicates: list[str] = []
    if node is not None:
        _walk(node, (), lines, duplicates)
    if duplicates:
        found = [d.split(":", 1) for d in duplicates]
        raise FileError([Problem(name, "同一个键写了两次，请只保留一个", int(n), f) for n, f in found])
    return data, lines


def _dotted(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text


def _line_of(lines: dict[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int | None:
    """The line of the deepest part of ``loc`` present in the file (a missing field: its parent)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _schema_problems(
    path: Path, exc: ValidationError, lines: dict[tuple[str | int, ...], int]
) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if isinstance(part, (str, int)))
        loc = _strip_union_tags(loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "不认识的字段，请检查拼写（格式见 schedules/README.md）"
        elif error["type"] == "missing":
            message = "缺少必填字段"
        problems.append(Problem(str(path), message, _line_of(lines, loc), _dotted(loc)))
    return problems


def _strip_union_tags(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    return tuple(part for part in loc if not (isinstance(part, str) and part.startswith("function-")))


def load_file(path: Path) -> Loaded:
    """Parse and schema-check one file; :class:`FileError` lists every problem with its line."""
    data, lines = parse_yaml(path)
    if not isinstance(data, dict):
        raise FileError(
            [Problem(str(path), "文件内容应是一个宣传计划（键: 值 的映射），见 schedules/README.md", 1)]
        )
    _codes_as_text(data.get("target"))
    try:
        spec = CampaignFile.model_validate(data)
    except ValidationError as exc:
        raise FileError(_schema_problems(path, exc, lines)) from exc
    loaded = Loaded(path, spec, lines)
    if spec.key != path.stem:
        raise FileError(
            [loaded.problem(f"key 应与文件名相同：文件名为 {path.stem}，key 为 {spec.key}", "key")]
        )
    return loaded


def _codes_as_text(target: Any) -> None:
    """Region and endpoint codes are text; unquoted ones arrive as YAML integers."""
    if not isinstance(target, dict):
        return
    for clause in (target, target.get("exclude")):
        if isinstance(clause, dict):
            for kind in ("towns", "villages", "endpoints"):
                if isinstance(clause.get(kind), list):
                    clause[kind] = [str(v) if isinstance(v, int) else v for v in clause[kind]]


def files_in(folder: Path) -> list[Path]:
    """The campaign files of a folder, by name (README and other files are not campaigns)."""
    return sorted(path for path in folder.iterdir() if path.suffix == SUFFIX and path.is_file())


def load_folder(folder: Path) -> tuple[list[Loaded], list[Problem]]:
    """Every file of the folder parsed, plus every problem found; keys and playlist names are unique."""
    if not folder.is_dir():
        return [], [Problem(str(folder), "目录不存在")]
    loaded: list[Loaded] = []
    problems: list[Problem] = []
    for path in files_in(folder):
        try:
            loaded.append(load_file(path))
        except FileError as exc:
            problems.extend(exc.problems)
    owners: dict[str, Loaded] = {}
    for item in loaded:
        name = item.spec.content.playlist.name
        if name in owners:
            other = owners[name].path.name
            problems.append(
                item.problem(
                    f"节目单名称与 {other} 重复：每个宣传计划用自己的节目单", "content", "playlist", "name"
                )
            )
        owners.setdefault(name, item)
    return loaded, problems


# ---- seasons and days: MM-DD resolved against a reference date ----


def _parse_day(text: str, year: int | None = None) -> date:
    if len(text) == len("2026-01-01"):
        return date.fromisoformat(text)
    month, day = (int(part) for part in text.split("-"))
    if (month, day) == (2, 29):
        raise ValueError("每年重复的日期不能是 02-29（平年没有这一天），请写出完整日期")
    return date(year or 2001, month, day)


def is_month_day(text: str) -> bool:
    return len(text) == len("01-01")


def resolve_season(spec: SeasonSpec, *, today: date) -> tuple[date, date]:
    """Explicit dates as written; MM-DD: the season holding ``today``, else the next one to start.

    ``first: 10-01, last: 04-30`` crosses the new year: on 2026-11-15 it is 2026-10-01 to 2027-04-30,
    on 2026-05-01 it is 2026-10-01 to 2027-04-30 too, on 2027-04-30 still the same.
    """
    if is_month_day(spec.first) != is_month_day(spec.last):
        raise ValueError("first 和 last 须同为 MM-DD（每年重复）或同为 YYYY-MM-DD（指定年份）")
    if not is_month_day(spec.first):
        return _parse_day(spec.first), _parse_day(spec.last)
    first, last = _parse_day(spec.first), _parse_day(spec.last)
    crosses = (last.month, last.day) < (first.month, first.day)
    for year in (today.year - 1, today.year, today.year + 1):
        start = first.replace(year=year)
        end = last.replace(year=year + 1 if crosses else year)
        if end >= today:
            return start, end
    raise AssertionError("unreachable: a season of the next year always ends after today")


def place_day(text: str, season: tuple[date, date] | None) -> date:
    """A day written YYYY-MM-DD as is; MM-DD in the year that puts it inside the season."""
    if not is_month_day(text):
        return _parse_day(text)
    if season is None:
        raise ValueError(f"日期 {text} 只写了月日，需要季节 season 来确定年份；或写成 YYYY-MM-DD")
    first, last = season
    for year in range(first.year, last.year + 1):
        day = _parse_day(text, year)
        if first <= day <= last:
            return day
    raise ValueError(f"日期 {text} 不在季节 {first} 至 {last} 之内")
