"""Lets the feature tests import each other's random streams by module name
(test_sweep_slices reuses test_point_in_time's)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
