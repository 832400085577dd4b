"""The `cel` package (the Rust CEL interpreter) without its command line.

`cel/__init__.py` imports `cel.cli`, its interactive REPL, which imports prompt_toolkit
and pygments: 0.12-0.25 s of every payguard start (`python -X importtime`), for a REPL
payguard never runs (issue 11: start-up counts in a replay's CPU time). While `cel` is
first imported, a placeholder stands in for `cel.cli`; it is removed right after, so an
`import cel.cli` later still loads the real one. Import `cel` from here, never directly.
"""

import sys
import types

if "cel" not in sys.modules and "cel.cli" not in sys.modules:
    _placeholder = types.ModuleType("cel.cli", "placeholder: payguard never runs the CEL REPL")
    sys.modules["cel.cli"] = _placeholder
    try:
        import cel
    finally:
        if sys.modules.get("cel.cli") is _placeholder:
            del sys.modules["cel.cli"]
else:  # pragma: no cover - imported before payguard (a test, a REPL)
    import cel

__all__ = ["cel"]
