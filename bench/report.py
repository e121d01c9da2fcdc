"""How every scenario reports: rows of repeated runs, printed as a Markdown table with drip's ratios."""

from __future__ import annotations

import statistics
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.stats import summary


@dataclass
class Row:
    """One measured figure of one system: its runs, and how to print them."""

    what: str
    system: str
    runs: list[float] = field(default_factory=list)
    unit: str = ""
    digits: int = 0

    def median(self) -> float:
        return statistics.median(self.runs)


def table(title: str, rows: list[Row]) -> None:
    """Print rows grouped by figure; each drip setup's ratio to every peer on the same figure (one
    column per setup: "drip", "drip, 2 web processes" ...)."""
    mine = list(dict.fromkeys(r.system for r in rows if r.system.startswith("drip")))
    print(f"\n## {title}\n")
    # For times, a ratio below 1 is drip ahead.
    print("| figure | system | median (min–max) | " + " | ".join(f"{m} ÷ system" for m in mine) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in mine) + " |")
    for row in rows:
        ratios = []
        for m in mine:
            ours = next((r for r in rows if r.what == row.what and r.system == m and r.runs), None)
            fits = row.system not in mine and ours and row.runs and row.median()
            ratios.append(f"{ours.median() / row.median():.2f}×" if fits else "")
        shown = summary(row.runs, row.unit, row.digits) if row.runs else "not measured"
        print(f"| {row.what} | {row.system} | {shown} | " + " | ".join(ratios) + " |")
    sys.stdout.flush()


def attempt(rows: list[Row], system: str, run: Callable[[], None]) -> None:
    """Run one measurement; a peer that cannot run is reported, not fatal to the rest."""
    try:
        run()
    except Exception as exc:
        print(f"  ! {system}: {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exc(limit=3, file=sys.stderr)


