"""Where the Handbook's data lives: `../shared/datasets` beside the checkout (CI), or
`PAYGUARD_DATASETS`. Tests that need it skip, saying why, when it is absent."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def fdh_dir() -> Path | None:
    candidates = [Path(p) for p in [os.environ.get("PAYGUARD_DATASETS", "")] if p]
    candidates += [parent / "shared" / "datasets" for parent in ROOT.parents]
    for base in candidates:
        folder = base / "fdh_simulated"
        if (folder / "transactions_raw.csv.xz").is_file():
            return folder
    return None


@pytest.fixture(scope="session")
def fdh() -> Path:
    folder = fdh_dir()
    if folder is None:
        pytest.skip(
            "Handbook data not found (../shared/datasets/fdh_simulated or $PAYGUARD_DATASETS)"
        )
    return folder
