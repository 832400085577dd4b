"""The rule parser reads CEL as CEL does, and what runs (its printed tree) means the same.

Random expressions, sprinkled with comments, line breaks and tricky string literals, are
parsed and printed back; CEL must give the printed text the same result as the original
on random variables (or fail on both), and where `cel.translate` translates the printed
text, Python must agree too. Then the lexical tricks that defeated the old regex check.
"""

from typing import Any

import cel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payguard.cel import sandbox
from payguard.cel.syntax import CelSyntaxError, parse, render
from payguard.cel.translate import Untranslatable, translate

TYPES = {"i": "int", "j": "int", "b": "bool", "s": "string", "ns": "string?", "nb": "bool?"}
VALUES = st.fixed_dictionaries(
    {
        "i": st.sampled_from([0, 1, -1, 7, 2**63 - 1, -(2**63), 100]),
        "j": st.sampled_from([0, 2, -3, 5]),
        "b": st.booleans(),
        "s": st.sampled_from(["", "a", "api", "é", "a//b", "'"]),
        "ns": st.none() | st.just("api"),
        "nb": st.none() | st.booleans(),
        "m": st.just({"k": 1, "x": "y"}),
    }
)


def _atoms() -> st.SearchStrategy[str]:
    names = st.sampled_from(["i", "j", "b", "s", "ns", "nb", "m.k", "m['x']"])
    literals = st.sampled_from(
        [
            "0",
            "1",
            "-3",
            "0x1F",
            "2u",
            "1.5",
            "-2.5e1",
            "9223372036854775807",
            "-9223372036854775808",
            "true",
            "false",
            "null",
            "'a'",
            '"api"',
            "'a//b'",
            "'it\\'s'",
            '"\\u00e9"',
            "r'\\d'",
            "'''x\ny'''",
            '".all("',
            "'\\x41\\101'",
        ]
    )
    calls = st.sampled_from(["size(s)", "s.size()", "s.startsWith('a')", "s.contains('/')"])
    return names | literals | calls


def _expressions() -> st.SearchStrategy[str]:
    binary = st.sampled_from(
        ["&&", "||", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "in"]
    )
    space = st.sampled_from([" ", "  ", "\n", " // c\n", "\t", "// '\"\n"])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return (
            st.tuples(inner, space, binary, space, inner).map("".join)
            | inner.map(lambda x: f"({x})")
            | inner.map(lambda x: f"!{x}")
            | inner.map(lambda x: f"-{x}")
            | st.lists(inner, min_size=0, max_size=3).map(lambda xs: f"[{', '.join(xs)}]")
            | st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} ? {t[1]} :\n{t[2]}")
        )

    return st.recursive(_atoms(), extend, max_leaves=8)


def _run(text: str, values: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", cel.compile(text).execute(cel.Context(values))
    except Exception as exc:
        return "error", type(exc).__name__


@settings(max_examples=2_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expressions(), VALUES)
def test_printed_tree_means_what_cel_reads(text: str, values: dict[str, Any]) -> None:
    try:
        cel.compile(text)
    except ValueError:
        return  # not CEL; the rule is refused by CEL after the parser
    tree = parse(text)  # everything CEL accepts in this grammar, the parser accepts
    printed = render(tree)
    assert render(parse(printed)) == printed
    expected = _run(text, values)
    got = _run(printed, values)
    if expected[0] == "ok":
        assert got == expected, (text, printed, values)
    else:
        assert got[0] == "error", (text, printed, values)
    try:
        code = translate(printed, TYPES, lambda name: f"v[{name!r}]")
    except Untranslatable:
        return
    namespace: dict[str, Any] = {"v": values}
    exec("from payguard.cel.translate import _int64, _div, _mod", namespace)
    try:
        python = eval(code, namespace)
    except (OverflowError, ZeroDivisionError):
        return  # the engine re-runs the rule through CEL
    assert expected == ("ok", python), (text, printed, code, values)


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("amount > 5 // over 5\n && channel == 'app'", "((amount > 5) && (channel == 'app'))"),
        ("s == 'a // not a comment'", "(s == 'a // not a comment')"),
        ('s == "it\'s"', "(s == 'it\\'s')"),
        ("s == r'\\d+'", "(s == '\\\\d+')"),
        ("i == 0x10", "(i == 16)"),
        ("i > -9223372036854775808", "(i > (-9223372036854775808))"),
        ("a ? b : c ? d : e", "(a ? b : (c ? d : e))"),
        ("-a.b < 1", "((-a.b) < 1)"),
        ("m['k'] in [1, 2,]", "(m['k'] in [1, 2])"),
    ],
)
def test_printing(text: str, printed: str) -> None:
    assert render(parse(text)) == printed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a > ", "<input>:1:5: unexpected end of expression"),
        ("a > 1 /* c */", "<input>:1:8: unexpected '*'"),
        ("b'x' == s", "bytes literals are not supported"),
        ("a.B{f: 1}", "message construction"),
        (".a == 1", "leading-dot names"),
        ("'abc", "<input>:1:1: unterminated string"),
        ("'\\q'", "invalid escape sequence"),
        ("9223372036854775808 > 1", "integer literal out of range"),
        ("x == 1\n && while", "<input>:2:5: reserved word 'while'"),
        ("(" * 100 + "1" + ")" * 100, "nested more than 32 levels deep"),
        (" + ".join(["i"] * 999) + " > 0", "nested more than 32 levels deep"),  # a deep chain
    ],
)
def test_syntax_errors_say_what_and_where(text: str, reason: str) -> None:
    with pytest.raises(CelSyntaxError, match=reason.replace("*", r"\*").replace("(", r"\(")):
        parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2].//\nall(x, x > 0)",  # the comment that defeated the regex
        "[1, 2]\n.\nexists(x, x > 0)",
        "[1, 2]. // .\n exists_one(x, x > 0)",
        "[[1]].map(x, x).size() > 0",
        "size([1, 2].filter(x, x > 1)) > 0",
        "i > 0 && (true ? [1].all(x, x > 0) : false)",
        "all([1], x, x > 0)",
    ],
)
def test_macros_are_refused_wherever_they_hide(text: str) -> None:
    with pytest.raises(sandbox.SandboxError, match="comprehension macros are not allowed"):
        sandbox.check(parse(text))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("cel.bind(x, 1, x > 0)", "unknown function `bind`"),
        ("s.matches(t)", "literal pattern"),
        ("timestamp(s) > timestamp('2020-01-01T00:00:00Z')", "unknown function `timestamp`"),
    ],
)
def test_only_listed_functions_may_be_called(text: str, reason: str) -> None:
    with pytest.raises(sandbox.SandboxError, match=reason):
        sandbox.check(parse(text))


def test_macro_names_in_strings_and_comments_are_harmless() -> None:
    text = "s == '.all(' && s != \".exists(x, true)\" // [1].map(x, x)\n"
    assert sandbox.check(parse(text)) == 7


def test_cost_counts_nodes_functions_and_list_elements() -> None:
    assert sandbox.cost(parse("i > 1")) == 3
    assert sandbox.cost(parse("s.contains('a')")) == 3 + sandbox.STRING_SCAN
    assert sandbox.cost(parse("s.matches('^a+$')")) == 3 + sandbox.REGEX + 4
    big_list = "i in [" + ", ".join(str(n) for n in range(500)) + "]"
    assert sandbox.cost(parse(big_list)) == 503
