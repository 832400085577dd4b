"""Lets the durability tests import the API test server (`apiserver`) and the engine
state helpers (`engine_state`) by module name."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parent / "api", HERE.parent / "engine"):
    sys.path.insert(0, str(folder))
