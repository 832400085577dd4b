"""Generated Python that can be read: a unique filename per function and its source kept.

The hot paths (feature snapshots and updates, native rules, chain conditions) are compiled
from generated source once per plan. Compiled under a shared name such as
`<payguard update>` with no source kept, a traceback from them showed no line and nobody
could print what runs. `compile_function` gives every generated function its own filename
(`<payguard snapshot payment #12>`), registers the source in `linecache` so tracebacks,
`pdb` and `inspect.getsource` show the lines, and drops it again when the function is
garbage collected (a ruleset swap rebuilds every plan, so a long-running server would
otherwise keep the source of every ruleset it ever ran).

Compiling costs one `linecache` entry per function; running it costs nothing extra.

    >>> double = compile_function("def f(x):\\n    return 2 * x\\n", "example", "f", {})
    >>> double(21), "return 2 * x" in source_of(double)
    (42, True)
"""

import itertools
import linecache
import re
import weakref
from collections.abc import Callable
from typing import Any

_serial = itertools.count(1)
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def compile_function(
    source: str, label: str, name: str, namespace: dict[str, Any]
) -> Callable[..., Any]:
    """Compile `source` (which defines function `name`) into `namespace` under the
    filename `<payguard LABEL #N>`, N unique in this process, with the source registered
    for tracebacks; returns the function."""
    filename = f"<payguard {label} #{next(_serial)}>"
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    linecache.cache[filename] = (len(source), None, lines, filename)
    exec(compile(source, filename, "exec"), namespace)
    function: Callable[..., Any] = namespace[name]
    weakref.finalize(function, linecache.cache.pop, filename, None)
    return function


def source_of(function: Callable[..., Any]) -> str:
    """The generated source of a function `compile_function` made ("" for any other)."""
    code = getattr(function, "__code__", None)
    if code is None:
        return ""
    entry = linecache.cache.get(code.co_filename)
    if entry is None or len(entry) != 4 or entry[1] is not None:
        return ""
    return "".join(entry[2])


def filename_of(function: Callable[..., Any]) -> str:
    """The filename a generated function was compiled under (its traceback name)."""
    code = getattr(function, "__code__", None)
    return "" if code is None else str(code.co_filename)


def comment(text: str) -> str:
    """`text` as a one-line `#` comment: line breaks of any kind are escaped, so text
    from a ruleset can never end the comment and become code (or shift the line numbers
    a traceback shows)."""
    return "# " + _LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], text)
