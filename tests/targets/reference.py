"""The selector semantics written plainly in Python: the oracle the SQL resolution must agree with."""

from __future__ import annotations

from dataclasses import dataclass

from broadcast.targets.schemas import Clause, Selector


@dataclass(frozen=True)
class Row:
    """One endpoint as the oracle sees it."""

    code: str
    village: str
    town: str
    tags: frozenset[str]


def _matches(row: Row, clause: Clause, groups: dict[str, set[str]]) -> bool:
    return (
        row.town in clause.towns
        or row.village in clause.villages
        or bool(row.tags & set(clause.tags))
        or any(row.code in groups[name] for name in clause.groups)
        or row.code in clause.endpoints
    )


def _in_area(row: Row, selector: Selector) -> bool:
    if selector.towns or selector.villages:
        in_region = row.town in selector.towns or row.village in selector.villages
    else:
        in_region = selector.all or bool(selector.tags)
    return in_region and (not selector.tags or bool(row.tags & set(selector.tags)))


def reached(rows: list[Row], selector: Selector, groups: dict[str, set[str]]) -> set[str]:
    """Codes of the endpoints ``selector`` reaches; ``groups`` maps a group name to its member codes."""
    result = set()
    for row in rows:
        included = (
            _in_area(row, selector)
            or any(row.code in groups[name] for name in selector.groups)
            or row.code in selector.endpoints
        )
        if included and not _matches(row, selector.exclude, groups):
            result.add(row.code)
    return result
