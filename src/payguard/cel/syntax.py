"""CEL syntax for rules: a tokenizer, a parser into a small AST, and a canonical printer.

Rules are checked on the tree, never on the text: a `//` comment, a string holding
`.all(`, or a line break between `.` and a macro name cannot hide anything, because the
tokenizer drops comments and reads strings (escapes, raw and triple-quoted forms) as CEL
does. What runs is not the text as written but `render(tree)`: fully parenthesised, no
comments, strings re-escaped. So the checked tree and the program CEL compiles (and the
text `cel.translate` translates) are one and the same.

The grammar is CEL's (github.com/google/cel-spec, langdef.md) minus what rules have no use
for: message construction (`a.B{f: 1}`), leading-dot names (`.a`), bytes literals and
the optional syntax (`a.?b`). Those are refused with a message naming them.

>>> render(parse("amount > 5 // a comment\\n && channel == 'app'"))
"((amount > 5) && (channel == 'app'))"
"""

import re
from collections.abc import Iterator
from typing import Any

import msgspec

MAX_DEPTH = 32
"""Trees deeper than this are refused, whether the depth comes from brackets or from a
long chain of one operator (`1 + 1 + … + 1` is a tree as deep as it is long): the default
ruleset's deepest condition is 10 levels; the printed text nests brackets as deep as the
tree, and CEL's parser (about 100 levels), this module's printer and the Python
translation all recurse on it."""


class CelSyntaxError(ValueError):
    """The text is not CEL this module accepts; `offset` is where (0-based), and `parse`
    names it as `<input>:line:column` (1-based, as CEL does)."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class Lit(msgspec.Struct, frozen=True):
    kind: str
    """`int`, `uint`, `double`, `string`, `bool` or `null`."""
    value: Any


class Ident(msgspec.Struct, frozen=True):
    name: str


class Select(msgspec.Struct, frozen=True):
    """`operand.field`: a map key or message field, not a variable."""

    operand: "Node"
    field: str


class Index(msgspec.Struct, frozen=True):
    operand: "Node"
    index: "Node"


class Call(msgspec.Struct, frozen=True):
    """`function(args)`, or `target.function(args)` when `target` is set."""

    function: str
    target: "Node | None"
    args: "tuple[Node, ...]"


class Unary(msgspec.Struct, frozen=True):
    op: str
    operand: "Node"


class Binary(msgspec.Struct, frozen=True):
    op: str
    left: "Node"
    right: "Node"


class Ternary(msgspec.Struct, frozen=True):
    condition: "Node"
    then: "Node"
    otherwise: "Node"


class ListLit(msgspec.Struct, frozen=True):
    items: "tuple[Node, ...]"


class MapLit(msgspec.Struct, frozen=True):
    entries: "tuple[tuple[Node, Node], ...]"


Node = Lit | Ident | Select | Index | Call | Unary | Binary | Ternary | ListLit | MapLit

RESERVED = frozenset(
    [
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
        "in",
    ]
)
_LITERAL_WORDS: dict[str, Lit] = {
    "true": Lit("bool", True),
    "false": Lit("bool", False),
    "null": Lit("null", None),
}
_SKIP = re.compile(r"(?:[ \t\n\r\f]+|//[^\n]*)+")
_NUMBER = re.compile(
    r"(?P<hex>0[xX][0-9a-fA-F]+)(?P<hexu>[uU])?(?![\w.])"
    r"|(?P<double>(?:[0-9]*\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+))(?![\w.])"
    r"|(?P<int>[0-9]+)(?P<intu>[uU])?(?![\w.])"
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING_START = re.compile(r"([rRbB]{0,2})('''|\"\"\"|'|\")")
_OPERATORS = ("&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*", "/", "%")
_PUNCTUATION = ("?", ":", ".", ",", "(", ")", "[", "]", "{", "}")
_SYMBOLS = tuple(sorted(_OPERATORS + _PUNCTUATION, key=len, reverse=True))
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Token = tuple[str, Any, int]
"""(kind, value, position): kind is `int`, `uint`, `double`, `string`, `word` or `op`."""


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`, comments and whitespace dropped."""
    return list(_tokens(text))


def _tokens(text: str) -> Iterator[Token]:
    pos, end = 0, len(text)
    while True:
        skipped = _SKIP.match(text, pos)
        if skipped:
            pos = skipped.end()
        if pos >= end:
            return
        string = _STRING_START.match(text, pos)
        if string and (string.group(1) or text[pos] in "'\""):
            value, pos = _string(text, pos, string.group(1).lower(), string.group(2))
            yield "string", value, string.start()
            continue
        number = _NUMBER.match(text, pos)
        if number:
            kind, value = _number(number)
            yield kind, value, pos
            pos = number.end()
            continue
        word = _WORD.match(text, pos)
        if word:
            yield "word", word.group(), pos
            pos = word.end()
            continue
        symbol = next((s for s in _SYMBOLS if text.startswith(s, pos)), None)
        if symbol is None:
            raise CelSyntaxError(f"unexpected character {text[pos]!r}", pos)
        yield "op", symbol, pos
        pos += len(symbol)


def _number(match: re.Match[str]) -> tuple[str, Any]:
    if match.group("double") is not None:
        value = float(match.group("double"))
        if value == float("inf"):
            raise CelSyntaxError("double literal out of range", match.start())
        return "double", value
    digits, base = (match.group("hex"), 16) if match.group("hex") else (match.group("int"), 10)
    unsigned = bool(match.group("hexu") or match.group("intu"))
    value = int(digits, base)
    if value > (2**64 - 1 if unsigned else 2**63):  # 2**63 only as `-9223372036854775808`
        raise CelSyntaxError("integer literal out of range", match.start())
    return ("uint" if unsigned else "int"), value


def _string(text: str, pos: int, prefix: str, quote: str) -> tuple[str, int]:
    """The value of the string literal at `pos` and the position after it."""
    if "b" in prefix:
        raise CelSyntaxError("bytes literals are not supported in rules", pos)
    raw = "r" in prefix
    i = pos + len(prefix) + len(quote)
    out: list[str] = []
    while True:
        if i >= len(text) or (len(quote) == 1 and text[i] in "\r\n"):
            raise CelSyntaxError("unterminated string", pos)
        if text.startswith(quote, i):
            return "".join(out), i + len(quote)
        char = text[i]
        if char != "\\" or raw:  # in a raw string a backslash is an ordinary character
            out.append(char)
            i += 1
        else:
            decoded, i = _escape(text, i)
            out.append(decoded)


def _escape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape sequence at text[i] (a backslash)."""
    code = text[i + 1 : i + 2]
    if code in _ESCAPES:
        return _ESCAPES[code], i + 2
    width = {"x": 2, "X": 2, "u": 4, "U": 8}.get(code)
    if width is not None:
        digits = text[i + 2 : i + 2 + width]
        if len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
            value = int(digits, 16)
            if value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF:
                return chr(value), i + 2 + width
    digits = text[i + 1 : i + 4]
    if len(digits) == 3 and all(c in "01234567" for c in digits) and digits[0] in "0123":
        return chr(int(digits, 8)), i + 4
    raise CelSyntaxError("invalid escape sequence", i)


class _Parser:
    """Recursive descent over CEL's grammar; precedence from low to high:
    `?:`, `||`, `&&`, relations (`< <= >= > == != in`), `+ -`, `* / %`, unary `! -`,
    member access (`.f`, `.f()`, `[i]`)."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0
        self.end = len(text)

    def parse(self) -> Node:
        if not self.tokens:
            raise CelSyntaxError("empty expression", 0)
        node = self._expr()
        if self.pos != len(self.tokens):
            raise CelSyntaxError(f"unexpected {self._describe()}", self._offset())
        return node

    # -- token helpers

    def _offset(self) -> int:
        return self.tokens[self.pos][2] if self.pos < len(self.tokens) else self.end

    def _peek(self) -> Any:
        token = self.tokens[self.pos] if self.pos < len(self.tokens) else None
        return token[1] if token is not None and token[0] in ("op", "word") else None

    def _describe(self) -> str:
        if self.pos >= len(self.tokens):
            return "end of expression"
        return repr(self.tokens[self.pos][1])

    def _take(self) -> Token:
        if self.pos >= len(self.tokens):
            raise CelSyntaxError("unexpected end of expression", self.end)
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _expect(self, symbol: str) -> None:
        if self._peek() != symbol or self.tokens[self.pos][0] != "op":
            raise CelSyntaxError(f"expected {symbol!r}, found {self._describe()}", self._offset())
        self.pos += 1

    def _accept(self, symbol: str) -> bool:
        if self.pos < len(self.tokens) and self.tokens[self.pos][:2] == ("op", symbol):
            self.pos += 1
            return True
        return False

    # -- grammar

    def _expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise CelSyntaxError(f"nested more than {MAX_DEPTH} levels deep", self._offset())
        condition = self._or()
        if self._accept("?"):
            then = self._or()
            self._expect(":")
            node: Node = Ternary(condition, then, self._expr())
        else:
            node = condition
        self.depth -= 1
        return node

    def _or(self) -> Node:
        node = self._and()
        while self._accept("||"):
            node = Binary("||", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._relation()
        while self._accept("&&"):
            node = Binary("&&", node, self._relation())
        return node

    def _relation(self) -> Node:
        node = self._binary_level(("+", "-"), self._multiplication)
        while True:
            op = self._peek()
            is_in = op == "in" and self.tokens[self.pos][0] == "word"
            if not is_in and op not in ("<", "<=", ">=", ">", "==", "!="):
                return node
            self.pos += 1
            node = Binary(op, node, self._binary_level(("+", "-"), self._multiplication))

    def _multiplication(self) -> Node:
        return self._binary_level(("*", "/", "%"), self._unary)

    def _binary_level(self, ops: tuple[str, ...], operand: Any) -> Node:
        node: Node = operand()
        while self.pos < len(self.tokens) and self.tokens[self.pos][0] == "op":
            op = self.tokens[self.pos][1]
            if op not in ops:
                break
            self.pos += 1
            node = Binary(op, node, operand())
        return node

    def _unary(self) -> Node:
        """CEL's `unary`: a run of one operator, which cancels out when its length is
        even (`!!x` is `x`, unchecked, as CEL has it); `-5` is a signed literal."""
        op = self._peek()
        if op not in ("!", "-") or self.tokens[self.pos][0] != "op" or self._signed_number():
            return self._member()
        run = 0
        while self._accept(op):
            run += 1
        operand = self._member()
        return operand if run % 2 == 0 else Unary(op, operand)

    def _signed_number(self) -> bool:
        """Whether a `-` directly followed by an int or double literal is next."""
        tokens, pos = self.tokens, self.pos
        return (
            pos + 1 < len(tokens)
            and tokens[pos][:2] == ("op", "-")
            and tokens[pos + 1][0] in ("int", "double")
        )

    def _member(self) -> Node:
        node = self._primary()
        while True:
            if self._accept("."):
                kind, name, at = self._take()
                if kind != "word":
                    raise CelSyntaxError("expected a field name after '.'", at)
                if self._accept("("):
                    node = Call(name, node, self._arguments(")"))
                else:
                    node = Select(node, name)
            elif self._accept("["):
                index = self._expr()
                self._expect("]")
                node = Index(node, index)
            elif self._peek() == "{" and self.tokens[self.pos][0] == "op":
                raise CelSyntaxError(
                    "message construction (`Type{...}`) is not supported", self._offset()
                )
            else:
                return node

    def _primary(self) -> Node:
        sign = -1 if self._signed_number() else 1
        if sign < 0:
            self.pos += 1
        kind, value, at = self._take()
        if kind == "int" and sign * value > INT64_MAX:
            raise CelSyntaxError("integer literal out of range", at)
        if kind in ("int", "double"):
            return Lit(kind, sign * value)
        if kind in ("uint", "string"):
            return Lit(kind, value)
        if kind == "word":
            if value in _LITERAL_WORDS:
                return _LITERAL_WORDS[value]
            if value in RESERVED:
                raise CelSyntaxError(f"reserved word {value!r}", at)
            if self._accept("("):
                return Call(value, None, self._arguments(")"))
            return Ident(value)
        if value == "(":
            node = self._expr()
            self._expect(")")
            return node
        if value == "[":
            return ListLit(self._arguments("]"))
        if value == "{":
            return self._map()
        if value == ".":
            raise CelSyntaxError("leading-dot names are not supported", at)
        raise CelSyntaxError(f"unexpected {value!r}", at)

    def _arguments(self, close: str) -> tuple[Node, ...]:
        items: list[Node] = []
        while not self._accept(close):
            items.append(self._expr())
            if not self._accept(","):
                self._expect(close)
                break
        return tuple(items)

    def _map(self) -> Node:
        entries: list[tuple[Node, Node]] = []
        while not self._accept("}"):
            key = self._expr()
            self._expect(":")
            entries.append((key, self._expr()))
            if not self._accept(","):
                self._expect("}")
                break
        return MapLit(tuple(entries))


def parse(text: str) -> Node:
    """The tree of a CEL expression, or CelSyntaxError naming what and where."""
    try:
        tree = _Parser(text).parse()
        if depth(tree) > MAX_DEPTH:
            raise CelSyntaxError(f"nested more than {MAX_DEPTH} levels deep", 0)
        return tree
    except CelSyntaxError as exc:
        line = text.count("\n", 0, exc.offset) + 1
        column = exc.offset - (text.rfind("\n", 0, exc.offset) + 1) + 1
        where = f"<input>:{line}:{column}"  # CEL's own form, which clients already parse
        raise CelSyntaxError(f"{where}: {exc.message}", exc.offset) from None


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of `node`."""
    match node:
        case Select(operand=operand) | Unary(operand=operand):
            return (operand,)
        case Index(operand=operand, index=index):
            return (operand, index)
        case Call(target=target, args=args):
            return args if target is None else (target, *args)
        case Binary(left=left, right=right):
            return (left, right)
        case Ternary(condition=c, then=t, otherwise=o):
            return (c, t, o)
        case ListLit(items=items):
            return items
        case MapLit(entries=entries):
            return tuple(part for entry in entries for part in entry)
    return ()


def depth(tree: Node) -> int:
    """The number of levels of `tree`, computed without recursion (a shared subtree, as a
    signal inlined twice, is measured once)."""
    levels: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            levels[id(node)] = 1 + max((levels[id(c)] for c in children(node)), default=0)
        elif id(node) not in levels:
            stack.append((node, True))
            stack.extend((child, False) for child in children(node) if id(child) not in levels)
    return levels[id(tree)]


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def substitute(node: Node, names: dict[str, Node]) -> Node:
    """`node` with every identifier in `names` replaced by its tree (field names after
    `.` are not identifiers and stay)."""
    match node:
        case Ident(name=name):
            return names.get(name, node)
        case Lit():
            return node
        case Select(operand=operand, field=field):
            return Select(substitute(operand, names), field)
        case Index(operand=operand, index=index):
            return Index(substitute(operand, names), substitute(index, names))
        case Call(function=function, target=target, args=args):
            new_target = None if target is None else substitute(target, names)
            return Call(function, new_target, tuple(substitute(a, names) for a in args))
        case Unary(op=op, operand=operand):
            return Unary(op, substitute(operand, names))
        case Binary(op=op, left=left, right=right):
            return Binary(op, substitute(left, names), substitute(right, names))
        case Ternary(condition=c, then=t, otherwise=o):
            return Ternary(substitute(c, names), substitute(t, names), substitute(o, names))
        case ListLit(items=items):
            return ListLit(tuple(substitute(i, names) for i in items))
        case MapLit(entries=entries):
            return MapLit(tuple((substitute(k, names), substitute(v, names)) for k, v in entries))
    raise TypeError(f"not a node: {node!r}")


def render(node: Node) -> str:
    """Canonical CEL text for the tree: every operator parenthesised, no comments,
    strings single-quoted with only printable ASCII left unescaped."""
    match node:
        case Lit(kind=kind, value=value):
            return _render_literal(kind, value)
        case Ident(name=name):
            return name
        case Select(operand=operand, field=field):
            return f"{render(operand)}.{field}"
        case Index(operand=operand, index=index):
            return f"{render(operand)}[{render(index)}]"
        case Call(function=function, target=target, args=args):
            call = f"{function}({', '.join(render(a) for a in args)})"
            return call if target is None else f"{render(target)}.{call}"
        case Unary(op=op, operand=Lit(kind="int" | "double") as number):
            return f"({op}({render(number)}))"  # `-5` would read as a literal
        case Unary(op=op, operand=operand):
            return f"({op}{render(operand)})"
        case Binary(op=op, left=left, right=right):
            return f"({render(left)} {op} {render(right)})"
        case Ternary(condition=c, then=t, otherwise=o):
            return f"({render(c)} ? {render(t)} : {render(o)})"
        case ListLit(items=items):
            return f"[{', '.join(render(i) for i in items)}]"
        case MapLit(entries=entries):
            return "{" + ", ".join(f"{render(k)}: {render(v)}" for k, v in entries) + "}"
    raise TypeError(f"not a node: {node!r}")


def _render_literal(kind: str, value: Any) -> str:
    if kind == "string":
        return "'" + "".join(_render_char(c) for c in value) + "'"
    if kind == "bool":
        return "true" if value else "false"
    if kind == "null":
        return "null"
    if kind == "uint":
        return f"{value}u"
    if kind == "double":
        text = repr(value)
        return f"({text})" if value < 0 else text
    return f"({value})" if value < 0 else str(value)


def _render_char(char: str) -> str:
    if char in "'\\":
        return "\\" + char
    if " " <= char <= "~":
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
