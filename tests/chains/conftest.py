"""Lets the chain tests import their brute-force twin (`chain_reference`) by module name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
