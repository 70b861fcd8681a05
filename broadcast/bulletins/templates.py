"""Bulletin templates (pure): ``{village}``, ``{town}``, ``{date}``, ``{weekday}`` and declared custom
fields; ``{{`` and ``}}`` are literal braces. Which fields a text uses decides how often it is
rendered: once, once per town, or once per village."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from broadcast.errors import Invalid

BUILTIN_FIELDS = {
    "village": "村（社区）名称",
    "town": "乡镇（街道）名称",
    "date": "日期，如 2026年10月1日",
    "weekday": "星期，如 星期四",
}
WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")
MAX_VALUE_CHARS = 100


class RenderScope(StrEnum):
    once = "once"  # the same text everywhere
    per_town = "per_town"
    per_village = "per_village"


@dataclass(frozen=True)
class RenderContext:
    """The values one rendering of a bulletin is made for; ``local_date`` is the broadcast day."""

    village: str | None = None
    town: str | None = None
    local_date: date | None = None
    fields: Mapping[str, str] = field(default_factory=dict)


def _allowed(custom_fields: Iterable[str]) -> list[str]:
    return [*BUILTIN_FIELDS, *custom_fields]


def fields_used(text: str) -> list[str]:
    """Field names in order of first use; a malformed template is a 422 saying how to fix it."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise Invalid(
            "文字稿模板格式错误：花括号不成对。字段写作 {village}，要显示花括号本身请写 {{ 或 }}",
            details={"reason": str(exc)},
        ) from exc
    names: list[str] = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise Invalid(
                f"文字稿模板字段 {{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} 写法不对：字段只能是名称，如 {{village}}",
                details={"field": name},
            )
        if name not in names:
            names.append(name)
    return names


def literal_text(text: str) -> str:
    """The text without its fields, braces unescaped."""
    return "".join(literal for literal, *_ in string.Formatter().parse(text))


def validate_custom_fields(custom_fields: list[str]) -> None:
    for name in custom_fields:
        if not name.isidentifier():
            raise Invalid(f"自定义字段名 {name!r} 不合法：只能用字母、汉字、数字和下划线，且不以数字开头")
        if name in BUILTIN_FIELDS:
            raise Invalid(f"自定义字段 {name} 与内置字段重名，内置字段：{'、'.join(BUILTIN_FIELDS)}")
    if len(set(custom_fields)) != len(custom_fields):
        raise Invalid("自定义字段有重复")


def validate_template(text: str, custom_fields: list[str]) -> list[str]:
    """The fields ``text`` uses; an unknown one is a 422 naming it and the allowed ones."""
    validate_custom_fields(custom_fields)
    allowed = _allowed(custom_fields)
    used = fields_used(text)
    unknown = [name for name in used if name not in allowed]
    if unknown:
        raise Invalid(
            f"文字稿使用了未知字段：{'、'.join('{' + n + '}' for n in unknown)}；"
            f"可用字段：{'、'.join('{' + n + '}' for n in allowed)}（自定义字段需先在 custom_fields 中声明）",
            details={"unknown": unknown, "allowed": allowed},
        )
    return used


def render_scope(text: str) -> RenderScope:
    used = fields_used(text)
    if "village" in used:
        return RenderScope.per_village
    if "town" in used:
        return RenderScope.per_town
    return RenderScope.once


def written_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _builtin_value(name: str, context: RenderContext) -> str | None:
    if name in ("date", "weekday"):
        day = context.local_date
        if day is None:
            return None
        return written_date(day) if name == "date" else WEEKDAYS[day.weekday()]
    value: str | None = getattr(context, name)
    return value


def _value(name: str, context: RenderContext) -> str:
    value = _builtin_value(name, context) if name in BUILTIN_FIELDS else context.fields.get(name)
    if value is None or not value.strip():
        what = BUILTIN_FIELDS.get(name, "自定义字段的值")
        raise Invalid(f"渲染文字稿需要字段 {{{name}}}（{what}），但没有提供", details={"missing": name})
    if len(value) > MAX_VALUE_CHARS:
        raise Invalid(f"字段 {{{name}}} 的值过长：最多 {MAX_VALUE_CHARS} 个字符", details={"field": name})
    return value.strip()


def render(text: str, *, custom_fields: list[str], context: RenderContext) -> str:
    """The text with every field filled in; values for fields the text does not use are ignored."""
    used = validate_template(text, custom_fields)
    values = {name: _value(name, context) for name in used}
    return string.Formatter().vformat(text, (), values)
