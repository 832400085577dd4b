"""Chart geometry for the HTML report: plain shapes the template draws as inline SVG.

Computed here rather than in the template so the arithmetic (scales, offsets) is Python
that mypy checks, and the template only places shapes. No JavaScript, no network.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

ROW = 22
GUTTER = 280
PLOT = 440
PAD = 8
COLUMN_PLOT_HEIGHT = 180
BAR = 16


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str
    tip: str


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    css: str
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    width: int
    height: int
    bars: tuple[Bar, ...]
    labels: tuple[Label, ...]
    axis: tuple[float, float, float, float]
    """One line (x1, y1, x2, y2): the value axis' zero."""
    legend: tuple[tuple[str, str], ...]


def _scale(values: Sequence[float], axis_max: float | None) -> float:
    top = axis_max if axis_max is not None else max(values, default=0.0)
    return top if top > 0 else 1.0


def hbars(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str],
    axis_max: float | None = None,
    notes: Sequence[str] | None = None,
) -> Chart:
    """Horizontal bars, one row per category, the series stacked left to right; each row
    ends with its note (default: the formatted total)."""
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    unit = PLOT / _scale(totals, axis_max)
    bars: list[Bar] = []
    labels: list[Label] = []
    for i, name in enumerate(categories):
        y = PAD + i * ROW
        x = float(GUTTER)
        for s in series:
            value = s.values[i]
            if value > 0:
                width = max(value * unit, 1.0)
                bars.append(Bar(x, y + 3, width, ROW - 6, s.css, f"{name}: {s.name} {fmt(value)}"))
                x += width
        labels.append(Label(GUTTER - 6, y + ROW - 7, name, "end"))
        labels.append(Label(x + 4, y + ROW - 7, notes[i] if notes else fmt(totals[i])))
    height = 2 * PAD + max(len(categories), 1) * ROW
    axis = (float(GUTTER), float(PAD), float(GUTTER), float(height - PAD))
    legend = tuple((s.name, s.css) for s in series)
    return Chart(title, GUTTER + PLOT + 200, height, tuple(bars), tuple(labels), axis, legend)


def columns(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str],
) -> Chart:
    """Vertical columns, one group per category, the series side by side (a histogram)."""
    top = _scale([v for s in series for v in s.values], None)
    width = max(len(series), 1) * BAR
    group = width + BAR
    base = PAD + COLUMN_PLOT_HEIGHT
    bars: list[Bar] = []
    labels: list[Label] = []
    for i, name in enumerate(categories):
        x0 = 50 + i * group
        for j, s in enumerate(series):
            h = s.values[i] / top * COLUMN_PLOT_HEIGHT
            tip = f"{name}: {s.name} {fmt(s.values[i])}"
            bars.append(Bar(x0 + j * BAR, base - h, BAR - 1, h, s.css, tip))
        labels.append(Label(x0 + width / 2, base + 14, name, "middle"))
    labels.append(Label(44, PAD + 10, fmt(top), "end"))
    labels.append(Label(44, base, fmt(0), "end"))
    axis = (48.0, float(base), 50.0 + len(categories) * group, float(base))
    legend = tuple((s.name, s.css) for s in series)
    chart_width = int(60 + len(categories) * group)
    return Chart(title, chart_width, base + 24, tuple(bars), tuple(labels), axis, legend)
