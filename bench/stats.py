"""Percentiles and the summary of repeated runs (median and range), as every scenario reports them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The value below which a fraction `q` of `values` fall (nearest rank; no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(runs: Sequence[float], unit: str = "", digits: int = 0) -> str:
    """`median (min–max)` of the runs, e.g. `3,912 msgs/s (3,801–4,020)`."""
    def fmt(x: float) -> str:
        return f"{x:,.{digits}f}"

    tail = f" {unit}" if unit else ""
    if len(runs) == 1:
        return f"{fmt(runs[0])}{tail}"
    return f"{fmt(statistics.median(runs))}{tail} ({fmt(min(runs))}–{fmt(max(runs))})"
