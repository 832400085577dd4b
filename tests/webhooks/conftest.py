"""Lets the webhook tests import their receiver (`receiver`) by module name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
