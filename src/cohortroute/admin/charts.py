"""Server-side SVG line charts: one line per version over time, no script and no library.

Each chart carries a ``<title>`` and an ``aria-label`` naming what it shows; the page puts the
same numbers in a table next to it for screen readers. The time axis is labelled in UTC (hours
and minutes) at its start, middle and end; the last minute is the current one, still counting,
so its end label says ``now``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence

from .html import Html, esc

log = logging.getLogger(__name__)

COLOURS = ("#1f6feb", "#c2410c", "#15803d", "#7e22ce", "#a16207", "#0e7490")
"""Line colours, one per version in order (chosen to stay apart for colour-blind readers)."""

WIDTH, HEIGHT, PAD = 560, 180, 36


def line_chart(
    title: str,
    minutes: Sequence[int],
    series: Mapping[str, Sequence[float | None]],
    unit: str = "",
) -> Html:
    """``series`` (version -> one value per minute, None for no data) as an SVG line chart."""
    values = [v for line in series.values() for v in line if v is not None and math.isfinite(v)]
    top = max(values, default=0.0) or 1.0
    span = max(len(minutes) - 1, 1)

    def x(i: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * i / span

    def y(v: float) -> float:
        return HEIGHT - PAD + (2 * PAD - HEIGHT) * min(v, top) / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#888"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>',
        f'<text x="4" y="{PAD - 8}" font-size="11">{esc(_short(top))}{esc(unit)}</text>',
        f'<text x="4" y="{HEIGHT - PAD + 4}" font-size="11">0</text>',
        *_time_labels(minutes, x),
    ]
    for index, (version, line) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        points = " ".join(
            f"{x(i):.1f},{y(v):.1f}"
            for i, v in enumerate(line)
            if v is not None and math.isfinite(v)
        )
        if points:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
            )
        parts.append(
            f'<text x="{PAD + 8 + 110 * index}" y="{HEIGHT - 8}" font-size="12" '
            f'fill="{colour}">&#9644; {esc(version)}</text>'
        )
    parts.append("</svg>")
    return Html("".join(parts))


def minute_label(minute: int) -> str:
    """An epoch minute as ``HH:MM`` UTC."""
    return time.strftime("%H:%M", time.gmtime(minute * 60))


def _time_labels(minutes: Sequence[int], x: Callable[[int], float]) -> list[str]:
    """Tick labels under the time axis: first, middle and last minute (the last is ``now``)."""
    if not minutes:
        return []
    last = len(minutes) - 1
    ticks = sorted({0, last // 2, last})
    labels = []
    for i in ticks:
        text = minute_label(minutes[i]) + (" UTC" if i == 0 else "")
        if i == last:
            text = f"{minute_label(minutes[i])} now"
        anchor = "start" if i == 0 else ("end" if i == last else "middle")
        labels.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - PAD + 14}" font-size="10" '
            f'text-anchor="{anchor}" fill="#555">{esc(text)}</text>'
        )
    return labels


def _short(value: float) -> str:
    return f"{value:.3g}"
