"""Train the learned score across many simulated worlds (issue 11 §5).

One simulated world teaches a model the tactics and the population of that world; a score
that must hold on traffic no one tuned to is better taught on many. A *world* is one
`payguard simulate` run (a variant set × a seed). Each world's rows are built on its own
fresh feature state, exactly as a fresh engine would see that world, so no aggregate,
graph or report of one world reaches another; rows are then stacked with the world's tag
in front of every event id and card (`tuning-3/s3-00001234`), so row identity never
collides. Labels come from each world's labels file (simulator ground truth).

The calibration split is by world: the Platt map and the budget thresholds are fitted on
whole worlds the trees never saw, so the cut-off for "0.5 % of legitimate money events"
is measured on a population and on campaigns the model did not learn from, which is what
production meets. Held-out *variants* (`variants="heldout"`) are for judging only and
never enter here (bench/ml_worlds.py).
"""

import hashlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from payguard.ml.feature_set import FeatureSet
from payguard.ml.model import DEFAULT_ROUNDS, Manifest
from payguard.ml.rows import NO_LABEL, Rows, file_sha256
from payguard.ml.train import _date_of, _shift, fit_calibrate_save, load_rows, offset_of
from payguard.sim import SimConfig, simulate
from payguard.sim.config import VariantSet

WORLD_BUDGETS: dict[str, float] = {"challenge": 0.005, "review": 0.001}
"""Share of legitimate money events each model action may reach (issue 11 §5: the model
must live inside a friction budget well under the issue's 1 % challenge ceiling, which the
rules also draw on)."""


@dataclass(frozen=True)
class WorldSpec:
    """What every world of a training set shares; only the seed differs between them."""

    variants: VariantSet = "tuning"
    users: int = 2_000
    days: int = 30
    attack_rate: float = 0.05

    def config(self, seed: int) -> SimConfig:
        return SimConfig(
            users=self.users,
            days=self.days,
            seed=seed,
            attack_rate=self.attack_rate,
            variants=self.variants,
        )

    def tag(self, seed: int) -> str:
        """The world's name, prefixed to its event ids and cards (`tuning-3`)."""
        return f"{self.variants}-{seed}"


@dataclass
class WorldRows:
    """Rows of several worlds stacked in world order, each world in its arrival order."""

    rows: Rows
    seed: npt.NDArray[np.int64]
    """The seed of the world each row came from."""

    def __len__(self) -> int:
        return len(self.rows)

    def of(self, seeds: Sequence[int]) -> npt.NDArray[np.bool_]:
        """Mask of the rows of these worlds."""
        return np.isin(self.seed, np.asarray(list(seeds), np.int64))


def tagged(rows: Rows, tag: str) -> Rows:
    """`rows` with `tag/` in front of every event id and card (identity across worlds)."""
    prefix = f"{tag}/"
    return Rows(
        rows.columns,
        rows.x,
        rows.ts,
        np.asarray([prefix + str(e) for e in rows.event_id], object),
        np.asarray([prefix + str(c) for c in rows.card], object),
        rows.label_ts,
        rows.source_sha256,
    )


def stack(worlds: Sequence[tuple[int, Rows]]) -> WorldRows:
    """One `WorldRows` of tagged per-world rows (same columns), in the order given.
    `WorldRows.of` selects by seed, so give each world its own seed."""
    if not worlds:
        raise ValueError("no worlds to stack")
    columns = worlds[0][1].columns
    if any(rows.columns != columns for _, rows in worlds):
        raise ValueError("worlds have different feature columns")
    digest = hashlib.sha256("+".join(rows.source_sha256 for _, rows in worlds).encode())
    rows = Rows(
        columns,
        np.concatenate([r.x for _, r in worlds]),
        np.concatenate([r.ts for _, r in worlds]),
        np.concatenate([r.event_id for _, r in worlds]),
        np.concatenate([r.card for _, r in worlds]),
        np.concatenate([r.label_ts for _, r in worlds]),
        digest.hexdigest(),
    )
    seeds = np.concatenate([np.full(len(r), s, np.int64) for s, r in worlds])
    return WorldRows(rows, seeds)


def world_rows(
    spec: WorldSpec,
    seeds: Sequence[int],
    fs: FeatureSet,
    token_key: bytes,
    *,
    cache: Path | None = None,
    on_world: Callable[[int, Rows], None] | None = None,
) -> WorldRows:
    """Simulate each world, build its rows on a fresh feature state, label them from its
    labels file, tag and stack them. `cache` keeps rows by events-file hash (simulating is
    cheap, rows are not); the simulated files themselves are temporary."""
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {list(seeds)}")
    parts: list[tuple[int, Rows]] = []
    with tempfile.TemporaryDirectory(prefix="payguard-worlds-") as tmp:
        for seed in seeds:
            events, labels = Path(tmp) / f"ev-{seed}.jsonl", Path(tmp) / f"lab-{seed}.jsonl"
            simulate(spec.config(seed), events, labels)
            rows = load_rows(events, fs, token_key, labels, cache)
            rows.source_sha256 = f"{file_sha256(events)}+{file_sha256(labels)}"
            events.unlink()
            labels.unlink()
            if on_world is not None:
                on_world(seed, rows)
            parts.append((seed, tagged(rows, spec.tag(seed))))
    return stack(parts)


def train_worlds(
    data: WorldRows,
    fs: FeatureSet,
    out: Path,
    spec: WorldSpec,
    calibration_seeds: Sequence[int],
    *,
    budgets: dict[str, float] | None = None,
    params: dict[str, Any] | None = None,
    rounds: int = DEFAULT_ROUNDS,
) -> Manifest:
    """Fit on every world but `calibration_seeds`, calibrate and choose the thresholds for
    `budgets` (default `WORLD_BUDGETS`) on those, write the artifact to `out`."""
    seeds = [int(s) for s in dict.fromkeys(data.seed.tolist())]
    calibration = [int(s) for s in calibration_seeds]
    if not calibration or any(s not in seeds for s in calibration):
        raise ValueError(f"calibration seeds {calibration} must be among the worlds {seeds}")
    fit_seeds = [s for s in seeds if s not in calibration]
    if not fit_seeds:
        raise ValueError("every world calibrates: leave at least one world to fit on")
    rows = data.rows
    y = np.asarray(rows.label_ts != NO_LABEL, np.int8)
    fit_mask, valid_mask = ~data.of(calibration), data.of(calibration)
    for name, mask in (("fit", fit_mask), ("calibration", valid_mask)):
        if not y[mask].any() or y[mask].all():
            raise ValueError(f"the {name} worlds need both attack and legitimate rows")
    manifest = Manifest(
        version="",
        feature_set=fs.name,
        columns=list(fs.columns),
        catalog_sha256=file_sha256(fs.catalog_path),
        train_window=_span(rows, fit_mask, offset_of(fs)),
        valid_window=_span(rows, valid_mask, offset_of(fs)),
        label_source=f"simulator labels files ({spec.variants} variants, ground truth)",
        labels_as_of="ground truth",
        data_sha256=rows.source_sha256,
        params=params or {},
        rounds=rounds,
        platt={},
        worlds={
            "variants": spec.variants,
            "users": spec.users,
            "days": spec.days,
            "attack_rate": spec.attack_rate,
            "fit_seeds": fit_seeds,
            "calibration_seeds": calibration,
        },
    )
    chosen = WORLD_BUDGETS if budgets is None else budgets
    return fit_calibrate_save(rows, y, fit_mask, valid_mask, manifest, out, chosen)


def _span(rows: Rows, mask: npt.NDArray[np.bool_], offset_hours: int) -> list[str]:
    """[first, last + 1 day) local dates of the masked rows (worlds share a calendar)."""
    ts = rows.ts[mask]
    last = _date_of(int(ts.max()), offset_hours)
    return [_date_of(int(ts.min()), offset_hours), _shift(last, 1)]
