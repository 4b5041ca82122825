"""Charts as inline SVG, rendered on the server: no JavaScript and no CDN needed.

Each function takes plain values (``Decimal`` credits) and returns ``Markup`` that a
template embeds as is. Every bar or point carries a ``<title>`` (tooltip) and
``data-value`` so tests and screen readers can read the numbers back.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]


@dataclass(frozen=True)
class Series:
    """One stacked layer: a label and one value (credits) per category."""

    label: str
    values: list[Decimal]


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _nice_max(value: Decimal) -> Decimal:
    """A round axis maximum at or above ``value`` (1, 2, 5 x a power of ten)."""
    if value <= 0:
        return Decimal(1)
    exp = value.adjusted()
    for step in (1, 2, 5, 10):
        top = Decimal(step).scaleb(exp)
        if top >= value:
            return top
    return Decimal(10).scaleb(exp)  # pragma: no cover - loop always returns


def _fmt(value: Decimal) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value.quantize(Decimal('0.01')).normalize():f}"


def _y_axis(top: Decimal, left: int, plot_w: int, plot_h: int, pad_top: int) -> list[str]:
    out = []
    for i in range(5):
        v = top * i / 4
        y = pad_top + plot_h - plot_h * i / 4
        out.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" '
                   f'y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                   f'font-size="11" fill="#555">{_fmt(v)}</text>')
    return out


def stacked_bars(categories: list[str], series: list[Series], *, title: str,
                 width: int = 820, height: int = 300) -> Markup:
    """Vertical bars, one per category (day), each stacked by series (model)."""
    left, pad_top, legend_h, bottom = 60, 10, 18 * ((len(series) + 2) // 3), 40
    plot_w, plot_h = width - left - 10, height - pad_top - bottom
    totals = [sum((s.values[i] for s in series), Decimal(0)) for i in range(len(categories))]
    top = _nice_max(max(totals, default=Decimal(0)))
    parts = [f'<svg class="chart stacked" role="img" aria-label="{escape(title)}" '
             f'viewBox="0 0 {width} {height + legend_h}" width="100%" '
             'xmlns="http://www.w3.org/2000/svg">', *_y_axis(top, left, plot_w, plot_h, pad_top)]
    n = max(len(categories), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.75, 1.0)
    label_every = max(1, round(n / 10))
    for i, cat in enumerate(categories):
        x = left + i * slot + (slot - bar_w) / 2
        y = float(pad_top + plot_h)
        for k, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = float(value / top) * plot_h
            y -= h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{color(k)}" data-series="{escape(s.label)}" '
                f'data-value="{value}"><title>{escape(cat)} · {escape(s.label)}: '
                f'{_fmt(value)} credits</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{pad_top + plot_h + 16}" '
                         f'text-anchor="middle" font-size="11" fill="#555">'
                         f'{escape(cat[5:] if len(cat) == 10 else cat)}</text>')
    for k, s in enumerate(series):
        lx = left + (k % 3) * (plot_w / 3)
        ly = height + 18 * (k // 3) - 8
        parts.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="10" height="10" '
                     f'fill="{color(k)}"/><text class="legend" x="{lx + 14:.1f}" y="{ly}" '
                     f'font-size="12">{escape(s.label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hbars(items: list[tuple[str, Decimal]], *, title: str, width: int = 400) -> Markup:
    """Horizontal bars, largest first as given (top users, top groups)."""
    row_h, label_w = 22, 130
    height = max(len(items), 1) * row_h + 8
    top = max((v for _, v in items), default=Decimal(0)) or Decimal(1)
    parts = [f'<svg class="chart hbars" role="img" aria-label="{escape(title)}" '
             f'viewBox="0 0 {width} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, value) in enumerate(items):
        y = 4 + i * row_h
        w = float(value / top) * (width - label_w - 70)
        short = label if len(label) <= 18 else label[:17] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12">'
            f'{escape(short)}</text><rect class="bar" x="{label_w}" y="{y + 3}" '
            f'width="{max(w, 1):.1f}" height="{row_h - 6}" fill="{color(0)}" '
            f'data-value="{value}"><title>{escape(label)}: {_fmt(value)} credits</title></rect>'
            f'<text x="{label_w + max(w, 1) + 4:.1f}" y="{y + 15}" font-size="11" '
            f'fill="#555">{_fmt(value)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def burndown(points: list[tuple[str, Decimal]], total: Decimal, *, title: str,
             width: int = 400, height: int = 140) -> Markup:
    """Remaining credits of an allowance over time, against its total (dashed)."""
    left, pad, bottom = 50, 8, 20
    plot_w, plot_h = width - left - 10, height - pad - bottom
    top = _nice_max(max([total, *(v for _, v in points)]))
    parts = [f'<svg class="chart burndown" role="img" aria-label="{escape(title)}" '
             f'viewBox="0 0 {width} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">']
    ty = pad + plot_h - float(total / top) * plot_h
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" '
                 f'stroke="#999" stroke-dasharray="4 3"/><text x="{left - 4}" y="{ty + 4:.1f}" '
                 f'text-anchor="end" font-size="10" fill="#555">{_fmt(total)}</text>')
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{pad + plot_h}" '
                 f'y2="{pad + plot_h}" stroke="#999"/>')
    n = max(len(points) - 1, 1)
    coords = []
    for i, (label, value) in enumerate(points):
        x = left + plot_w * i / n
        y = pad + plot_h - float(max(value, Decimal(0)) / top) * plot_h
        coords.append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2" '
                     f'fill="{color(2)}" data-value="{value}"><title>{escape(label)}: '
                     f'{_fmt(value)} credits left</title></circle>')
    if coords:
        parts.append(f'<polyline class="line" fill="none" stroke="{color(2)}" '
                     f'stroke-width="2" points="{" ".join(coords)}"/>')
        parts.append(f'<text x="{left}" y="{height - 4}" font-size="10" fill="#555">'
                     f'{escape(points[0][0])}</text><text x="{left + plot_w}" '
                     f'y="{height - 4}" font-size="10" text-anchor="end" fill="#555">'
                     f'{escape(points[-1][0])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
