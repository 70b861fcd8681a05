"""Run every ``tests/bench/bench_*.py`` module's ``run()`` and print one table.

``python -m tests.bench [name ...]`` runs only the modules whose name contains one of the words.
Exit status 1 when a benchmark fails (an exception is a broken benchmark, not a slow one).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.bench import Row

# Wide enough for the table when the output goes to a file or a CI log.
console = Console() if sys.stdout.isatty() else Console(width=160)


def _modules(words: list[str]) -> list[str]:
    here = str(Path(__file__).parent)
    names = sorted(m.name for m in pkgutil.iter_modules([here]) if m.name.startswith("bench_"))
    return [n for n in names if not words or any(w in n for w in words)]


def _table(rows: list[Row]) -> Table:
    table = Table(title="broadcast benchmarks")
    for column in ("benchmark", "case", "measured", "baseline", "ratio"):
        table.add_column(column, justify="left" if column in ("benchmark", "case") else "right")
    for row in rows:
        baseline = f"{row.baseline_s * 1000:.2f} ms" if row.baseline_s is not None else "-"
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        table.add_row(row.benchmark, row.case, f"{row.measured_s * 1000:.2f} ms", baseline, ratio)
    return table


def main(words: list[str]) -> int:
    rows: list[Row] = []
    failed = []
    for name in _modules(words):
        console.print(f"[bold]运行 {name}…[/bold]")
        try:
            rows.extend(importlib.import_module(f"tests.bench.{name}").run())
        except Exception:
            failed.append(name)
            console.print(f"[red]{name} 失败：[/red]\n{traceback.format_exc()}")
    console.print(_table(rows))
    if failed:
        console.print(f"[red]失败的基准：{', '.join(failed)}[/red]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
