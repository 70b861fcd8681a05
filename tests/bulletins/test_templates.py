"""Bulletin templates: fields, escapes, errors and the render scope."""

from __future__ import annotations

from datetime import date

import pytest

from broadcast.bulletins.templates import (
    RenderContext,
    RenderScope,
    fields_used,
    render,
    render_scope,
    validate_template,
)
from broadcast.errors import Invalid

TEXT = "{village}的村民朋友们，{date}（{weekday}）起进入森林防火期。森林火险等级：{fire_risk_level}级。"
CONTEXT = RenderContext(
    village="桃花村", town="青山镇", local_date=date(2026, 10, 1), fields={"fire_risk_level": "4"}
)


def test_render_fills_builtin_and_custom_fields() -> None:
    text = render(TEXT, custom_fields=["fire_risk_level"], context=CONTEXT)
    assert text == "桃花村的村民朋友们，2026年10月1日（星期四）起进入森林防火期。森林火险等级：4级。"


def test_double_braces_are_literal() -> None:
    text = render("{{村名}}是{village}", custom_fields=[], context=CONTEXT)
    assert text == "{村名}是桃花村"
    assert fields_used("{{village}}") == []


def test_unknown_field_names_it_and_the_allowed_ones() -> None:
    with pytest.raises(Invalid) as caught:
        validate_template("{village}注意{rain_level}", [])
    assert "{rain_level}" in caught.value.message
    assert "{village}" in caught.value.message
    assert caught.value.details["unknown"] == ["rain_level"]
    assert caught.value.details["allowed"] == ["village", "town", "date", "weekday"]


@pytest.mark.parametrize("text", ["{village", "village}", "{village!r}", "{date:%Y}", "{a.b}", "{}", "{0}"])
def test_malformed_templates_are_rejected(text: str) -> None:
    with pytest.raises(Invalid):
        validate_template(text, [])


@pytest.mark.parametrize(
    ("fields", "message"),
    [(["village"], "重名"), (["a", "a"], "重复"), (["1abc"], "不合法")],
)
def test_bad_custom_field_declarations(fields: list[str], message: str) -> None:
    with pytest.raises(Invalid, match=message):
        validate_template("你好", fields)


def test_missing_values_are_rejected_at_render_time() -> None:
    context = RenderContext(village="桃花村", local_date=date(2026, 10, 1))
    with pytest.raises(Invalid, match="fire_risk_level"):
        render(TEXT, custom_fields=["fire_risk_level"], context=context)
    with pytest.raises(Invalid, match="village"):
        render("{village}你好", custom_fields=[], context=RenderContext())


def test_values_for_unused_fields_are_ignored() -> None:
    assert render("你好", custom_fields=["x"], context=RenderContext(fields={"x": "1", "y": "2"})) == "你好"


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("全市居民请注意", RenderScope.once),
        ("{date}起进入防汛期", RenderScope.once),
        ("{town}的居民", RenderScope.per_town),
        ("{town}{village}的村民", RenderScope.per_village),
        ("{{village}}只是文字", RenderScope.once),
    ],
)
def test_scope_follows_the_fields_used(text: str, scope: RenderScope) -> None:
    assert render_scope(text) == scope
