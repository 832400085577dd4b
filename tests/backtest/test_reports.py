"""Renderers: label text is data, never markup; charts are drawn from the summary's numbers."""

from io import StringIO

from rich.console import Console

from payguard.backtest import DecidedEvent, Label, render_html, render_text, score
from payguard.backtest.charts import Series, columns, hbars

HOSTILE = "<script>alert(1)</script>[red]x[/red]"


def test_html_escapes_label_text() -> None:
    summary = score(
        [DecidedEvent("a", 0, "payment", "block", 100, amount_fen=12_345)],
        {"a": Label(HOSTILE, HOSTILE)},
        [],
        ruleset="v1",
    )
    page = render_html(summary)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "123.45" in page  # money formatted from fen


def test_terminal_prints_label_text_literally() -> None:
    summary = score(
        [DecidedEvent("a", 0, "payment", "allow", 0, amount_fen=7)],
        {"a": Label(HOSTILE, HOSTILE)},
        [],
        ruleset="v1",
    )
    sink = StringIO()
    render_text(summary, Console(file=sink, width=300, color_system=None))
    assert "[red]x[/red]" in sink.getvalue()


def test_stacked_bars_scale_to_the_axis() -> None:
    chart = hbars(
        "t",
        ["a", "b"],
        [Series("stopped", "ok", (75.0, 0.0)), Series("lost", "bad", (25.0, 100.0))],
        lambda v: f"{v:.0f}%",
        axis_max=100,
    )
    widths = [(b.tip, round(b.w)) for b in chart.bars]
    full = round(sum(w for tip, w in widths if tip.startswith("a:")))
    assert full == round(sum(w for tip, w in widths if tip.startswith("b:")))
    assert dict(widths)["a: stopped 75%"] == 3 * dict(widths)["a: lost 25%"]


def test_histogram_columns_are_proportional() -> None:
    chart = columns("t", ["0", "1–9"], [Series("attack", "attack", (50.0, 25.0))], str)
    heights = [b.h for b in chart.bars]
    assert heights[0] == 2 * heights[1] > 0
