"""Score one event in process, from the engine's own feature state, through ONNX Runtime.

Serving computes a model's row with the same function as training (`FeatureSet.row` over a
point-in-time snapshot), so there is no training/serving skew. It only serves a model
whose feature catalog is the engine's (same file bytes) and that needs no tracker (state
the engine does not keep); anything else is refused at load time with a reason, and the
engine then decides with rules only.
"""

import logging
from pathlib import Path

import numpy as np

from payguard.events import Event
from payguard.features import FeatureState, QueryPlan
from payguard.ml.explain import Explainer, Reason
from payguard.ml.feature_set import FeatureSet, feature_set
from payguard.ml.model import Scorer, read_manifest
from payguard.ml.rows import file_sha256

log = logging.getLogger("payguard")


class ModelServer:
    """A loaded artifact bound to one feature state."""

    def __init__(
        self, scorer: Scorer, fs: FeatureSet, state: FeatureState, directory: Path | None = None
    ) -> None:
        self.scorer = scorer
        self.fs = fs
        self.state = state
        self.plan: QueryPlan = state.plan(fs.needs)
        self.directory = directory
        self._explainer: Explainer | None = None

    @property
    def version(self) -> str:
        return self.scorer.version

    def score(self, event: Event) -> float | None:
        """Calibrated fraud probability as of the event's time; None for event types the
        model was not trained on. Call before the event is filed, like the rules."""
        scored = self.score_row(event)
        return None if scored is None else scored[0]

    def score_row(self, event: Event) -> tuple[float, list[float]] | None:
        """The score and the row it was computed from (kept by the engine so that a
        non-allow decision can explain the same row without a second snapshot)."""
        row = self.row(event)
        if row is None:
            return None
        return float(self.scorer.score(np.asarray([row], np.float32))[0]), row

    def row(self, event: Event) -> list[float] | None:
        """The model's row for the event as of now (None for types it does not score)."""
        if event.type not in self.fs.types:
            return None
        return self.fs.row(self.state.snapshot(event, self.plan), event)

    def explain(self, event: Event, k: int = 3) -> list[Reason]:
        """The features that raised this event's score most, in words (reason codes for
        non-allow decisions). Call before the event is filed, like `score`; [] for types
        the model does not score. The trees are loaded from model.txt on first use."""
        row = self.row(event)
        return [] if row is None else self.explain_row(row, k)

    def explain_row(self, row: list[float], k: int = 3) -> list[Reason]:
        """`explain` for a row `score_row` returned."""
        if self.directory is None:
            return []
        if self._explainer is None:
            self._explainer = Explainer(self.directory, self.fs.catalog())
        return self._explainer.reasons(row, k)


def load_model(
    directory: Path | None, state: FeatureState, catalog_path: Path
) -> tuple[ModelServer | None, str]:
    """The model in `directory` for this feature state, or None and why (for start-up)."""
    if directory is None:
        return None, "no model configured: deciding with rules only"
    if not (directory / "manifest.json").is_file():
        return None, f"no model artifact in {directory}: deciding with rules only"
    manifest = read_manifest(directory)
    fs = feature_set(manifest.feature_set)
    if fs.tracker is not None:
        return None, (
            f"model {manifest.version} needs state the engine does not keep "
            f"({manifest.feature_set}): deciding with rules only"
        )
    if manifest.catalog_sha256 != file_sha256(catalog_path):
        return None, (
            f"model {manifest.version} was trained on another feature catalog than "
            f"{catalog_path}: deciding with rules only"
        )
    if list(fs.columns) != manifest.columns:
        return None, f"model {manifest.version} lists other columns than {fs.name}"
    server = ModelServer(Scorer(directory), fs, state, directory)
    return server, f"model {manifest.version} loaded ({fs.name}, {len(fs.columns)} features)"
