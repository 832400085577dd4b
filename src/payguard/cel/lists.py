"""`card in deny_list('stolen_cards')`: list membership in a rule, as a boolean variable.

A list changes while the server runs (an analyst adds a card), so its entries can be
neither inlined into the compiled rule nor passed as a CEL list (thousands of tokens per
event). Instead the condition's tree is rewritten before any other check: each
`<subject> in deny_list('<name>')` (or `allow_list`) becomes one boolean identifier,
`list__deny__stolen_cards__card`, that the engine computes per event by asking the list
reader (`rules.ListReader`) about that one value. The rule then stays a plain boolean
expression, translatable to Python like any other, and the next event sees a change.

The left side names what is looked up: `card` (the card's token), `phone` and `id_number`
(tokens), `device` / `device_id`, `ip`, `payee` / `payee_id`, `merchant` / `merchant_id`,
`account` / `user_id`. Any other use of `deny_list` / `allow_list` is refused.

>>> from payguard.cel.syntax import parse, render
>>> render(rewrite(parse("card in deny_list('stolen_cards') && amount > 5")))
'(list__deny__stolen_cards__card && (amount > 5))'
>>> membership("list__deny__stolen_cards__card")
Membership(kind='deny', name='stolen_cards', subject='card')
"""

import re
from typing import NamedTuple

from payguard.cel.syntax import (
    Binary,
    Call,
    Ident,
    Index,
    ListLit,
    Lit,
    MapLit,
    Node,
    Select,
    Ternary,
    Unary,
    walk,
)

LIST_FUNCTIONS: dict[str, str] = {"deny_list": "deny", "allow_list": "allow"}
"""The functions a rule writes, and the kind of list each one reads."""
OPERANDS: dict[str, str] = {
    "card": "card",
    "phone": "phone",
    "id_number": "id_number",
    "device": "device",
    "device_id": "device",
    "ip": "ip",
    "payee": "payee",
    "payee_id": "payee",
    "merchant": "merchant",
    "merchant_id": "merchant",
    "account": "account",
    "user_id": "account",
}
"""What may stand left of `in deny_list(...)`, and the list subject it is looked up as."""
PREFIX = "list__"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_VARIABLE = re.compile(r"list__(allow|deny)__([a-z][a-z0-9_]{0,62})__([a-z_]+)")


class ListUseError(ValueError):
    """`deny_list` / `allow_list` used other than as `<subject> in deny_list('<name>')`."""


class Membership(NamedTuple):
    """What one membership variable asks: is the event's `subject` on list (kind, name)?"""

    kind: str
    name: str
    subject: str


def variable(kind: str, name: str, subject: str) -> str:
    """The identifier standing for `<subject> in <kind>_list('<name>')`."""
    return f"{PREFIX}{kind}__{name}__{subject}"


def membership(name: str) -> Membership | None:
    """What a membership identifier asks, or None for any other identifier."""
    if not name.startswith(PREFIX):
        return None
    found = _VARIABLE.fullmatch(name)
    if found is None or found.group(3) not in OPERANDS.values():
        return None
    return Membership(found.group(1), found.group(2), found.group(3))


def rewrite(node: Node) -> Node:
    """`node` with each list membership test replaced by its identifier; raises
    ListUseError for any other use of a list function."""
    match node:
        case Binary(op="in", left=left, right=Call(function=function) as call) if (
            function in LIST_FUNCTIONS
        ):
            return Ident(_membership_of(left, call))
        case Call(function=function) if function in LIST_FUNCTIONS:
            raise ListUseError(
                f"`{function}` is read only as `<subject> in {function}('<name>')`, "
                f"subject one of: {', '.join(OPERANDS)}"
            )
        case Ident() | Lit():
            return node
        case Select(operand=operand, field=field):
            return Select(rewrite(operand), field)
        case Index(operand=operand, index=index):
            return Index(rewrite(operand), rewrite(index))
        case Call(function=function, target=target, args=args):
            return Call(
                function,
                None if target is None else rewrite(target),
                tuple(rewrite(a) for a in args),
            )
        case Unary(op=op, operand=operand):
            return Unary(op, rewrite(operand))
        case Binary(op=op, left=left, right=right):
            return Binary(op, rewrite(left), rewrite(right))
        case Ternary(condition=c, then=t, otherwise=o):
            return Ternary(rewrite(c), rewrite(t), rewrite(o))
        case ListLit(items=items):
            return ListLit(tuple(rewrite(i) for i in items))
        case MapLit(entries=entries):
            return MapLit(tuple((rewrite(k), rewrite(v)) for k, v in entries))
    raise AssertionError(f"unknown node {node!r}")  # pragma: no cover


def uses_lists(node: Node) -> bool:
    """Whether the tree calls a list function anywhere (cheap pre-check for `rewrite`)."""
    return any(isinstance(n, Call) and n.function in LIST_FUNCTIONS for n in walk(node))


def _membership_of(left: Node, call: Call) -> str:
    function = call.function
    if not isinstance(left, Ident) or left.name not in OPERANDS:
        raise ListUseError(f"left of `in {function}(...)` must be one of: {', '.join(OPERANDS)}")
    if call.target is not None or len(call.args) != 1:
        raise ListUseError(f"`{function}` takes one argument, the list's name")
    arg = call.args[0]
    if not (isinstance(arg, Lit) and arg.kind == "string" and _NAME.fullmatch(str(arg.value))):
        raise ListUseError(
            f"`{function}` needs a literal list name: lower-case letters, digits and _"
        )
    return variable(LIST_FUNCTIONS[function], str(arg.value), OPERANDS[left.name])
