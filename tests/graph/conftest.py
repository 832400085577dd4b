"""Lets the graph tests import their networkx twin (`nx_reference`) by module name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
