"""Lets the rule tests import their shared engine world (`default_world`) by module name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
