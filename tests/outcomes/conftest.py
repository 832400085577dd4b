"""Lets the outcome tests import their helpers (`support`) and the API tests' real server
(`apiserver`) by module name."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "api"))
