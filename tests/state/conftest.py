"""Lets the state tests import their shared helpers (`state_support`) and the brute-force
streams of tests/features/test_point_in_time.py by module name."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "features"))
