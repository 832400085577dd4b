"""`payguard simulate --closed-loop`: the loop's report on the terminal, in JSON, beside
the open-loop backtest when one is given (`--compare backtest.json`)."""

from pathlib import Path

import msgspec
from rich.console import Console

from payguard.backtest.score import Summary
from payguard.cli.common import fail
from payguard.config import Settings
from payguard.features import FeatureState
from payguard.ruleset import Ruleset
from payguard.sim import SimConfig
from payguard.sim.loop import LoopConfig, render_loop, render_loop_html, run_closed_loop


def run_loop(
    cfg: SimConfig,
    settings: Settings,
    ruleset: Ruleset,
    features: FeatureState,
    events_out: Path | None,
    labels_out: Path | None,
    json_out: Path | None,
    html_out: Path | None,
    compare: Path | None,
    out: Console,
    analyst: bool = True,
) -> None:
    """Run one closed loop and print (and write) its report; bad input exits 2."""
    if labels_out is not None and events_out is None:
        fail("--labels needs -o/--output in the closed loop (labels name the events sent)")
    open_loop = _open_loop(compare) if compare is not None else None
    report = run_closed_loop(
        LoopConfig(cfg, analyst=analyst),
        settings=settings,
        features=features,
        ruleset=ruleset,
        events_out=events_out,
        labels_out=labels_out,
    )
    render_loop(report, out, open_loop)
    if json_out is not None:
        _write(json_out, msgspec.json.format(msgspec.json.encode(report)) + b"\n", out)
    if html_out is not None:
        _write(html_out, render_loop_html(report, open_loop).encode(), out)


def _write(path: Path, body: bytes, out: Console) -> None:
    try:
        path.write_bytes(body)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
    out.print(f"wrote {path}", highlight=False)


def _open_loop(path: Path) -> Summary:
    """The open-loop backtest's JSON (`payguard backtest --json`), read before the run."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=Summary)
    except OSError as exc:
        fail(f"--compare: cannot read {path}: {exc.strerror or exc}")
    except msgspec.DecodeError as exc:
        fail(f"--compare: {path} is not a backtest JSON report: {exc}")
