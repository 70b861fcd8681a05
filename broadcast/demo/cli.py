"""``broadcast seed-demo``: the demo city."""

from __future__ import annotations


def seed_demo() -> None:
    """Build the demo city: 29 towns, 278 villages, 9,305 endpoints and a user per role."""
