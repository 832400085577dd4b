"""Backtest: how much attack money a ruleset stops, and what it costs legitimate customers.

`run_backtest` replays events through a fresh engine (run.py), `score` turns decisions and
labels into numbers (score.py, pure), and report_text / report_html render them. See
docs/backtest.md for the definitions.
"""

from payguard.backtest.report_html import render_html
from payguard.backtest.report_text import render_text
from payguard.backtest.run import BacktestInputError, run_backtest
from payguard.backtest.score import DecidedEvent, Label, RuleInfo, Summary, score

__all__ = [
    "BacktestInputError",
    "DecidedEvent",
    "Label",
    "RuleInfo",
    "Summary",
    "render_html",
    "render_text",
    "run_backtest",
    "score",
]
