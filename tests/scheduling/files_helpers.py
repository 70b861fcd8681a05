"""Helpers for the schedules-as-files tests: a city with every tag, and campaign files to write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session

from broadcast.regions.models import TAGS
from tests import builders

TODAY_TEXT = "2026-11-28"


def tagged_city(session: Session) -> builders.City:
    """The small city plus one endpoint per tag, so every file of schedules/ reaches someone."""
    city = builders.small_city(session)
    for index, tag in enumerate(TAGS):
        village = city.villages[index % len(city.villages)]
        city.endpoints.append(builders.make_endpoint(session, village=village, tags=(tag,)))
    session.commit()
    return city


def campaign(key: str = "river-watch", **overrides: Any) -> dict[str, Any]:
    """A small valid campaign file as data (a draft: applying it needs no render)."""
    document: dict[str, Any] = {
        "key": key,
        "name": "河道巡查提醒",
        "status": "draft",
        "content": {
            "bulletins": [
                {
                    "key": "main",
                    "title": "河道安全",
                    "text": "请不要在河边玩耍，热线{hotline}。",
                    "custom_fields": ["hotline"],
                }
            ],
            "playlist": {
                "name": f"{key} 节目单",
                "items": [{"chime": "attention"}, {"bulletin": "main"}, {"silence_ms": 500}],
            },
        },
        "target": {"tags": ["river"]},
        "season": {"first": "10-01", "last": "04-30"},
        "recurrence": {"preset": "daily", "times": ["06:40", "18:20"]},
        "priority": 5,
        "max_plays_per_day": 2,
        "field_values": {"hotline": "12345"},
    }
    document.update(overrides)
    return document


def write(folder: Path, document: dict[str, Any], name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or document['key']}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
