"""Server-rendered SVG bar charts (no script, no external asset). Pure.

Each chart is an ``<svg role="img">`` with a ``<title>`` and ``<desc>`` that
state every value, so a screen reader gets the same numbers as the eye; the
same numbers are also in a table beside each chart on the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "hbar_chart"]

_INK = "#1a1a1a"
_BAR = "#1f5fa8"  # 6.6:1 on white


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:,.1f}"


def bar_chart(
    title: str,
    points: Sequence[tuple[str, float]],
    unit: str = "",
    width: int = 640,
    height: int = 220,
) -> str:
    """Vertical bars, one per ``(label, value)`` in order (e.g. events per day).

    Returns an SVG element as text; an empty ``points`` gives a chart that says
    "no data". Labels and the title are escaped."""
    desc = "; ".join(f"{label}: {_fmt(v)}{unit}" for label, v in points) or "no data"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" width="100%">',
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>",
    ]
    if not points:
        parts.append(f'<text x="10" y="30" fill="{_INK}">no data</text></svg>')
        return "".join(parts)
    top, bottom, left = 20, 40, 10
    plot_h = height - top - bottom
    peak = max(v for _, v in points) or 1.0
    slot = (width - 2 * left) / len(points)
    bar_w = min(60.0, max(2.0, slot * 0.7))
    for i, (label, value) in enumerate(points):
        h = plot_h * value / peak
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
            f'fill="{_BAR}" data-label="{escape(label)}" data-value="{value:g}"/>'
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" font-size="11" '
            f'text-anchor="middle" fill="{_INK}">{_fmt(value)}</text>'
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 16}" '
            f'font-size="11" text-anchor="middle" fill="{_INK}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(
    title: str,
    points: Sequence[tuple[str, float]],
    unit: str = "",
    width: int = 640,
    row_h: int = 24,
) -> str:
    """Horizontal bars, one row per ``(label, value)`` (e.g. time per app).

    Returns an SVG element as text; labels and the title are escaped."""
    desc = "; ".join(f"{label}: {_fmt(v)}{unit}" for label, v in points) or "no data"
    height = max(40, row_h * len(points) + 10)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" width="100%">',
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>",
    ]
    if not points:
        parts.append(f'<text x="10" y="25" fill="{_INK}">no data</text></svg>')
        return "".join(parts)
    label_w, value_w = 180, 90
    peak = max(v for _, v in points) or 1.0
    plot_w = width - label_w - value_w
    for i, (label, value) in enumerate(points):
        y = 5 + i * row_h
        w = plot_w * value / peak
        parts.append(
            f'<text x="{label_w - 6}" y="{y + row_h * 0.65:.1f}" font-size="12" '
            f'text-anchor="end" fill="{_INK}">{escape(label[:28])}</text>'
        )
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
            f'fill="{_BAR}" data-label="{escape(label)}" data-value="{value:g}"/>'
        )
        parts.append(
            f'<text x="{label_w + w + 6:.1f}" y="{y + row_h * 0.65:.1f}" '
            f'font-size="12" fill="{_INK}">{_fmt(value)}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
