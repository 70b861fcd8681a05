"""Benchmarks: ``python -m tests.bench`` (or ``make bench``) runs every ``bench_*.py`` module here.

A benchmark module defines ``run() -> list[Row]``; adding a file is all it takes. Each row
compares a measured time against a baseline measured in the same run (so the ratio means
something on any machine), or stands alone when there is nothing to compare with.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    benchmark: str
    case: str
    measured_s: float
    baseline_s: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline_s is None or self.baseline_s == 0:
            return None
        return self.measured_s / self.baseline_s


def median_s(action: Callable[[], object], *, runs: int, warmup: int = 2) -> float:
    """The median wall time of ``runs`` calls, after ``warmup`` calls that fill caches."""
    for _ in range(warmup):
        action()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
