"""CEL as Python: a condition translated to Python where the translation is exact.

Evaluating an event type's rules through the CEL binding cost about 9 µs an event: 3 to
convert the variables into a CEL context and 0.2 per program. Nearly every condition is
integer comparisons, arithmetic and boolean logic, which Python runs in tens of
nanoseconds. So a condition (a rule's `when`, a chain step's) is translated when, and only
when, every operation in it gives the same result in Python as in CEL for the static types
its variables have:

- `&&`, `||`, `!` over booleans; `==`, `!=` between operands of one type (either may be
  null); `<`, `<=`, `>`, `>=` between two non-null ints or two non-null strings; `in` a
  list literal of one type; `+`, `-`, `*`, `/`, `%` and unary `-` on non-null ints, with
  CEL's 64-bit overflow, truncating division and division-by-zero as errors;
- identifiers of known type, decimal int literals, plain string literals, `true`, `false`,
  `null`, parentheses;
- and the whole rule is a boolean.

Anything else (maps, doubles, uint, functions, member access, escapes, a nullable operand
of an ordering or of `&&`) leaves that rule to CEL. A translated rule that raises is re-run
through CEL, so an error (and its message) is CEL's own; short-circuiting is safe because
CEL's `&&`/`||` also absorb an error on the side that does not decide the result.

Generated code contains only names of known variables (as string subscripts), integer
and string literals written with `repr`, and a fixed set of operators, so a ruleset's
text can never inject code.
"""

import re
from collections.abc import Callable, Mapping
from typing import Any

from payguard.generated import comment, compile_function

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<int>0|[1-9][0-9]*)(?![\w.])
    | (?P<str>'[^'\\\n\r]*'|"[^"\\\n\r]*")
    | (?P<op>&&|\|\||==|!=|<=|>=|[<>!+\-*/%()\[\],])
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_ORDERABLE = {"int", "string"}
_LITERALS = {"true": ("True", "bool"), "false": ("False", "bool"), "null": ("None", "null")}


class Untranslatable(Exception):
    """The expression uses something whose Python meaning may differ from CEL's."""


class _Parser:
    """Recursive descent over CEL's precedence (|| < && < relations < + - < * / % <
    unary), emitting fully parenthesised Python and the static type of each node."""

    def __init__(self, text: str, types: Mapping[str, str], code_of: Callable[[str], str]):
        self.tokens = _tokenize(text)
        self.pos = 0
        self.types = types
        self.code_of = code_of

    def parse(self) -> str:
        code, kind = self._or()
        if self.pos != len(self.tokens) or kind != "bool":
            raise Untranslatable("not a boolean expression of the supported forms")
        return code

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise Untranslatable("unexpected end")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _or(self) -> tuple[str, str]:
        return self._logic("||", "or", self._and)

    def _and(self) -> tuple[str, str]:
        return self._logic("&&", "and", self._relation)

    def _logic(self, op: str, word: str, operand: Callable[[], tuple[str, str]]) -> tuple[str, str]:
        code, kind = operand()
        while self._peek() == op:
            self._take()
            right, right_kind = operand()
            if kind != "bool" or right_kind != "bool":
                raise Untranslatable(f"{op} on a non-boolean")
            code = f"({code} {word} {right})"
        return code, kind

    def _relation(self) -> tuple[str, str]:
        code, kind = self._additive()
        while (op := self._peek()) in ("==", "!=", "<", "<=", ">", ">=", "in"):
            self._take()
            right, right_kind = self._additive()
            if op in ("==", "!="):
                _check_equality(kind, right_kind)
            elif op == "in":
                if right_kind != f"list[{kind.rstrip('?')}]":
                    raise Untranslatable("`in` needs a list literal of the same type")
            elif kind != right_kind or kind not in _ORDERABLE:
                raise Untranslatable(f"ordering of {kind} and {right_kind}")
            code, kind = f"({code} {op} {right})", "bool"
        return code, kind

    def _additive(self) -> tuple[str, str]:
        return self._arithmetic(("+", "-"), self._multiplicative)

    def _multiplicative(self) -> tuple[str, str]:
        return self._arithmetic(("*", "/", "%"), self._unary)

    def _arithmetic(
        self, ops: tuple[str, ...], operand: Callable[[], tuple[str, str]]
    ) -> tuple[str, str]:
        code, kind = operand()
        while (op := self._peek()) in ops:
            self._take()
            right, right_kind = operand()
            if kind != "int" or right_kind != "int":
                raise Untranslatable(f"{op} on {kind} and {right_kind}")
            if op == "/":
                code = f"_div({code}, {right})"
            elif op == "%":
                code = f"_mod({code}, {right})"
            else:
                code = f"_int64({code} {op} {right})"
        return code, kind

    def _unary(self) -> tuple[str, str]:
        op = self._peek()
        if op == "!":
            self._take()
            code, kind = self._unary()
            if kind != "bool":
                raise Untranslatable("! on a non-boolean")
            return f"(not {code})", "bool"
        if op == "-":
            self._take()
            code, kind = self._unary()
            if kind != "int":
                raise Untranslatable("unary - on a non-int")
            return f"_int64(-{code})", "int"
        return self._primary()

    def _primary(self) -> tuple[str, str]:
        group, text = self._take()
        if group == "int":
            if int(text) > INT64_MAX:
                raise Untranslatable("int literal out of range")
            return text, "int"
        if group == "str":
            return repr(text[1:-1]), "string"
        if text == "(":
            code, kind = self._or()
            self._expect(")")
            return f"({code})", kind
        if text == "[":
            return self._list()
        if group != "name" or self._peek() in ("(", ".", "["):
            raise Untranslatable(f"unsupported {text!r}")
        if text in _LITERALS:
            return _LITERALS[text]
        if text not in self.types:
            raise Untranslatable(f"variable {text} of unknown type")
        return self.code_of(text), self.types[text]

    def _list(self) -> tuple[str, str]:
        items: list[str] = []
        kinds: set[str] = set()
        while True:
            code, kind = self._primary()
            items.append(code)
            kinds.add(kind)
            separator = self._take()[1]
            if separator == "]":
                break
            if separator != ",":
                raise Untranslatable("list literal")
        kind = kinds.pop()
        if kinds or kind not in ("int", "string", "bool"):
            raise Untranslatable("list of mixed or nullable types")
        return f"({', '.join(items)},)", f"list[{kind}]"

    def _expect(self, text: str) -> None:
        if self._take()[1] != text:
            raise Untranslatable(f"expected {text}")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise Untranslatable(f"unsupported syntax at {pos}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    return tokens


def _check_equality(left: str, right: str) -> None:
    """Python's `==` agrees with CEL's for one base type, null included; not across
    types (Python has `True == 1`, CEL has not)."""
    if "null" in (left, right):
        if left.endswith("?") or right.endswith("?") or left == right:
            return
        raise Untranslatable("null compared with a non-nullable value")
    if left.rstrip("?") != right.rstrip("?") or left.startswith("list"):
        raise Untranslatable(f"{left} == {right}")


def translate(text: str, types: Mapping[str, str], code_of: Callable[[str], str]) -> str:
    """The Python expression equivalent to CEL `text`, or raise Untranslatable.

    `types` maps each variable to `int`, `bool` or `string`, with `?` if it may be null;
    `code_of` gives the Python expression that reads a variable."""
    return _Parser(text, types, code_of).parse()


Predicate = Callable[[Mapping[str, Any]], Any]
"""A condition as Python: reads its variables from a mapping by name."""


def predicate(text: str, types: Mapping[str, str]) -> Predicate | None:
    """CEL `text` as a Python function of a variables mapping, or None when the
    translation would not be exact for these types. Like a translated rule, it may raise
    where CEL would give an error or where a variable is missing: the caller then asks CEL,
    so errors stay CEL's own."""
    try:
        code = translate(text, types, lambda name: f"v[{name!r}]")
    except (Untranslatable, RecursionError):  # too deep for Python: CEL runs it
        return None
    namespace: dict[str, Any] = dict(RUNTIME)
    source = f"def check(v):\n    {comment(text)}\n    return {code}\n"
    check: Predicate = compile_function(source, "condition", "check", namespace)
    return check


def _int64(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise OverflowError("int64 overflow")
    return value


def _div(a: int, b: int) -> int:
    """CEL's integer division: truncates toward zero (Python's // floors)."""
    quotient = abs(a) // abs(b)  # ZeroDivisionError as CEL errors
    return _int64(quotient if (a < 0) == (b < 0) else -quotient)


def _mod(a: int, b: int) -> int:
    """CEL's remainder takes the dividend's sign (Python's % takes the divisor's). Like
    the division, INT64_MIN % -1 is an overflow error in CEL (its quotient does not fit),
    though the remainder would be 0."""
    if a == INT64_MIN and b == -1:
        raise OverflowError("int64 overflow")
    remainder = abs(a) % abs(b)
    return -remainder if a < 0 else remainder


RUNTIME: dict[str, Any] = {"_int64": _int64, "_div": _div, "_mod": _mod}
"""The helpers translated code calls: the globals it is executed with."""
