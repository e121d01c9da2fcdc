"""Charts as SVG, rendered on the server (no chart library, no JavaScript): bars per minute and
planned-vs-actual points. Each returns markup for a template to include as it is."""

from __future__ import annotations

from markupsafe import Markup, escape

W, H, PAD = 600, 140, 24


def bars(points: list[tuple[str, float]], *, label: str, colour: str = "#3b7dd8") -> Markup:
    """One bar per (label, value), e.g. handled per minute; the tallest reaches the top."""
    if not points:
        return Markup(f'<p class="empty">no {escape(label)} in the last hour</p>')
    highest = max(v for _, v in points)
    top = highest or 1
    step = (W - 2 * PAD) / len(points)
    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(label)}">',
             f'<text x="{PAD}" y="14">{escape(label)} (max {highest:g})</text>']
    for i, (name, value) in enumerate(points):
        height = (H - 2 * PAD) * value / top
        parts.append(f'<rect x="{PAD + i * step:.1f}" y="{H - PAD - height:.1f}" width="{max(step - 1, 1):.1f}" '
                     f'height="{height:.1f}" fill="{colour}"><title>{escape(name)}: {value:g}</title></rect>')
    parts.append(f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#888"/></svg>')
    return Markup("".join(parts))


def planned_vs_actual(points: list[tuple[int, int]]) -> Markup:
    """A drip timeline: each release as a point at its planned run_at (x) and its lateness (y, s)."""
    if not points:
        return Markup('<p class="empty">no releases in the last day</p>')
    x0, x1 = min(p for p, _ in points), max(p for p, _ in points)
    late = [(r - p) / 1000 for p, r in points]
    top, bottom = max(max(late), 1), min(min(late), 0)
    span_x, span_y = (x1 - x0) or 1, (top - bottom) or 1
    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="planned run_at vs actual release">',
             f'<text x="{PAD}" y="14">lateness (s) by planned run_at: worst {top:.1f} s</text>']
    for (planned, _released), seconds in zip(points, late, strict=True):
        x = PAD + (W - 2 * PAD) * (planned - x0) / span_x
        y = H - PAD - (H - 2 * PAD) * (seconds - bottom) / span_y
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#d87a3b"><title>{seconds:.1f} s late</title>'
                     '</circle>')
    zero = H - PAD - (H - 2 * PAD) * (0 - bottom) / span_y
    parts.append(f'<line x1="{PAD}" y1="{zero:.1f}" x2="{W - PAD}" y2="{zero:.1f}" stroke="#888"/></svg>')
    return Markup("".join(parts))
