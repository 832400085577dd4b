"""Generated code is debuggable: unique filenames, source in tracebacks, comments that
cannot become code (payguard.generated, issue 13)."""

import gc
import linecache
import traceback
from typing import Any

import pytest

from payguard.generated import comment, compile_function, filename_of, source_of


def _boom_function() -> Any:
    source = "def boom(x):\n    y = x + 1\n    return y // 0  # the failing line\n"
    return compile_function(source, "test boom", "boom", {})


def test_a_traceback_shows_the_generated_line() -> None:
    boom = _boom_function()
    with pytest.raises(ZeroDivisionError) as info:
        boom(1)
    text = "".join(traceback.format_exception(info.value))
    assert filename_of(boom) in text
    assert "return y // 0  # the failing line" in text


def test_filenames_are_unique_and_the_source_is_kept() -> None:
    first, second = _boom_function(), _boom_function()
    assert filename_of(first) != filename_of(second)
    assert filename_of(first).startswith("<payguard test boom #")
    assert source_of(first) == source_of(second)
    assert "y = x + 1" in source_of(first)


def test_the_source_is_dropped_with_the_function() -> None:
    boom = _boom_function()
    name = filename_of(boom)
    assert name in linecache.cache
    del boom
    gc.collect()
    assert name not in linecache.cache


def test_source_of_other_functions_is_empty() -> None:
    assert source_of(len) == ""
    assert source_of(test_source_of_other_functions_is_empty) == ""


@pytest.mark.parametrize("brk", ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"])
def test_a_comment_never_ends_its_line(brk: str) -> None:
    text = comment(f"rule x: a > 1{brk}import os{brk}os.system('true')")
    assert text.startswith("# ")
    assert len(text.splitlines()) == 1
    source = f"def f():\n    {text}\n    return 1\n"
    f = compile_function(source, "test comment", "f", {})
    assert f() == 1
    assert source_of(f).count("\n") == 3
