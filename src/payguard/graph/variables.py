"""Graph features for rules and the model, point in time: `snapshot` reads the graph built
from the events that arrived before this one; `update` files this one afterwards.

Every feature is a flat CEL variable (docs/graph.md has the full table):

    graph_other_accounts_by_{identity,phone,device,card,payee[,ip]}[_{window}]
    graph_cards_by_account[_{window}]
    graph_card_bound_elsewhere, graph_card_bound_other_identity
    graph_component_accounts, graph_component_reported, graph_reported_distance
    graph_new_link
"""

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any

import msgspec

from payguard.events import Event
from payguard.features import NEVER, parse_duration
from payguard.graph.model import (
    ENTITY_PREFIX,
    FALLBACK_KINDS,
    KINDS,
    Edge,
    GraphConfig,
    event_entities,
    links,
    split_key,
)
from payguard.graph.state import IdentityGraph
from payguard.types import EpochMs

FORMAT = 1
UNBOUNDED = 1 << 30
"""Search depth meaning "the whole component, up to the caps"."""
NEIGHBOURHOOD_MAX_DEPTH = 4
NEIGHBOURHOOD_MAX_NODES = 300

STRUCTURAL = (
    "graph_component_accounts",
    "graph_component_reported",
    "graph_reported_distance",
    "graph_new_link",
)
CARD_OWNERS = ("graph_card_bound_elsewhere", "graph_card_bound_other_identity")

_OWN_KEY: dict[str, Callable[[Event], str | None]] = {
    "identity": lambda e: None if e.id_number is None else "i:" + e.id_number,
    "phone": lambda e: None if e.phone is None else "p:" + e.phone,
    "device": lambda e: None if e.device_id is None else "d:" + e.device_id,
    "card": lambda e: None if e.card is None else "c:" + e.card.token,
    "payee": lambda e: None if e.payee is None else "y:" + e.payee.id,
    "ip": lambda e: None if e.ip is None else "n:" + e.ip,
}
"""The event's own entity key of each kind (as `event_entities` names them)."""
_PERSON_PREFIX = {ENTITY_PREFIX[kind][0]: kind for kind in FALLBACK_KINDS}

_Count = tuple[str, str, int | None]
"""(feature name, entity kind, window in ms or None for "now")."""


class GraphPlan:
    """The work one set of needed names asks for, grouped so each entity is read once."""

    def __init__(self, owner: "GraphFeatures", needed: frozenset[str]) -> None:
        self.names = tuple(n for n in owner.names() if n in needed)
        by_kind: dict[str, tuple[str | None, list[tuple[str, int]]]] = {}
        for name, kind, window in owner._counts:
            if name in needed:
                now, windows = by_kind.get(kind, (None, []))
                if window is None:
                    now = name
                else:
                    windows.append((name, window))
                by_kind[kind] = (now, windows)
        self.kinds = tuple((k, now, tuple(ws)) for k, (now, ws) in by_kind.items())
        self.cards = tuple((n, w) for n, w in owner._cards if n in needed)
        self.owners = not needed.isdisjoint(CARD_OWNERS)
        self.structure = not needed.isdisjoint(STRUCTURAL)
        self.filter = self.owners or self.structure
        """Whether grouped computations produce names that were not asked for."""


class GraphFeatures:
    """The identity graph as a feature source: names, snapshot, update, export/restore."""

    def __init__(self, config: GraphConfig | None = None) -> None:
        self.config = (config or GraphConfig()).validate()
        self.graph = IdentityGraph(self.config)
        self.updates = 0
        windows = [(w, parse_duration(w)) for w in self.config.windows]
        kinds = [k for k in ENTITY_PREFIX if k != "ip" or self.config.track_ips]
        self._counts: list[_Count] = [
            (f"graph_other_accounts_by_{kind}{suffix}", kind, ms)
            for kind in kinds
            for suffix, ms in [("", None), *((f"_{w}", ms) for w, ms in windows)]
        ]
        self._cards: list[tuple[str, int | None]] = [
            ("graph_cards_by_account", None),
            *((f"graph_cards_by_account_{w}", ms) for w, ms in windows),
        ]
        self._names = [n for n, _, _ in self._counts] + [n for n, _ in self._cards]
        self._names += [*CARD_OWNERS, *STRUCTURAL]
        self._plans: dict[frozenset[str], GraphPlan] = {}

    def names(self) -> list[str]:
        """Every feature this graph can provide (with the configured windows and kinds)."""
        return list(self._names)

    def value_type(self, name: str) -> str:
        """A feature's CEL type (none is ever null), for rules run as Python."""
        return "bool" if name in CARD_OWNERS or name == "graph_new_link" else "int"

    # -- reading ----------------------------------------------------------------------------

    def plan(self, needed: AbstractSet[str]) -> "GraphPlan":
        """What `snapshot` computes for these names; cached per frozenset, so a caller that
        passes the same frozenset for every event of a type plans once."""
        key = needed if isinstance(needed, frozenset) else frozenset(needed)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = GraphPlan(self, key)
        return plan

    def snapshot(self, event: Event, needed: AbstractSet[str]) -> dict[str, Any]:
        """The needed features as of this event, from events that arrived before it.
        Pass a frozenset built once per event type: it is the plan cache's key."""
        if not needed:
            return {}
        plan = self.plan(needed)
        out: dict[str, Any] = {}
        if plan.kinds:
            person: dict[str, list[str]] | None = None
            for kind, now, windows in plan.kinds:
                key = _OWN_KEY[kind](event)
                if key is not None:
                    keys = [key]
                elif kind in FALLBACK_KINDS and event.user_id is not None:
                    person = person or self._person_keys(event.user_id)
                    keys = person[kind]
                else:
                    keys = []
                self._other_accounts(event, keys, now, windows, out)
        if plan.cards:
            self._cards_bound(event, plan.cards, out)
        if plan.owners:
            out.update(self._card_owners(event))
        if plan.structure:
            out.update(self._structure(event, needed))
        return {name: out[name] for name in plan.names} if plan.filter else out

    def _person_keys(self, account: str) -> dict[str, list[str]]:
        """The account's identities and phones, in one pass over its links: an event that
        does not carry its own (most events do not repeat them) is about the account's."""
        found: dict[str, list[str]] = {kind: [] for kind in FALLBACK_KINDS}
        for key in self.graph.acc.get(account, ()):
            kind = _PERSON_PREFIX.get(key[0])
            if kind is not None:
                found[kind].append(key)
        return found

    def _other_accounts(
        self,
        event: Event,
        keys: list[str],
        now: str | None,
        windows: tuple[tuple[str, int], ...],
        out: dict[str, Any],
    ) -> None:
        """Accounts other than the event's linked to the entity (the busiest of `keys`),
        all of them and those whose link was first seen within each window."""
        account, t = event.user_id, event.ts
        if now is not None:
            out[now] = 0
        for name, _ in windows:
            out[name] = 0
        for key in keys:
            accounts = self.graph.ent.get(key)
            if not accounts:
                continue
            others = len(accounts) - (account in accounts)
            if others == 0:  # the common case: only this account; no window can count more
                continue
            if now is not None and others > out[now]:
                out[now] = others
            for name, window in windows:
                out[name] = max(out[name], _recent(accounts, account, t - window, t))

    def _cards_bound(
        self, event: Event, wanted: tuple[tuple[str, int | None], ...], out: dict[str, Any]
    ) -> None:
        """Cards bound to the event's account now, and bound within each window."""
        for name, _ in wanted:
            out[name] = 0
        edges = self.graph.acc.get(event.user_id or "")
        if not edges:
            return
        t = event.ts
        for key, e in edges.items():
            bound = e.bound
            if bound is None or key[0] != "c":
                continue
            for name, window in wanted:
                if window is None or t - window < bound <= t:
                    out[name] += 1

    def _card_owners(self, event: Event) -> dict[str, bool]:
        """Is the event's card bound to another account, and does one of those accounts
        have an identity the event's account does not share?"""
        owners: list[str] = []
        if event.card is not None:
            accounts = self.graph.ent.get("c:" + event.card.token, {})
            owners = [a for a, e in accounts.items() if a != event.user_id and e.bound is not None]
        if not owners:
            return {"graph_card_bound_elsewhere": False, "graph_card_bound_other_identity": False}
        mine = self.graph.identities(event.user_id) if event.user_id is not None else set()
        if event.id_number is not None:
            mine.add("i:" + event.id_number)
        other_identity = False
        for owner in owners:
            theirs = self.graph.identities(owner)
            if theirs and theirs.isdisjoint(mine):
                other_identity = True
                break
        return {
            "graph_card_bound_elsewhere": True,
            "graph_card_bound_other_identity": other_identity,
        }

    def _structure(self, event: Event, needed: AbstractSet[str]) -> dict[str, Any]:
        """Component size and labels, nearest reported account and the new-link flag, from
        one bounded search (only as deep as the distance needs, if that is all)."""
        account = event.user_id
        if account is None:
            return {
                "graph_component_accounts": 0,
                "graph_component_reported": 0,
                "graph_reported_distance": NEVER,
                "graph_new_link": False,
            }
        whole = not needed.isdisjoint(STRUCTURAL[:2] + STRUCTURAL[3:])
        ball = self.graph.ball(account, UNBOUNDED if whole else self.config.max_distance)
        reported = self.graph.reported
        return {
            "graph_component_accounts": min(len(ball.accounts), self.config.max_component_accounts),
            "graph_component_reported": sum(1 for a in ball.accounts if a in reported),
            "graph_reported_distance": min(
                (
                    d
                    for a, d in ball.accounts.items()
                    if a in reported and d <= self.config.max_distance
                ),
                default=NEVER,
            ),
            "graph_new_link": self._new_link(event, account, ball.entities),
        }

    def _new_link(self, event: Event, account: str, reached: dict[str, int]) -> bool:
        """Would this event link the account to an entity of another component holding
        accounts (as far as the bounded search could tell)?"""
        if not links(event) or account not in self.graph.acc:
            return False
        unbind = event.type == "card_unbind"
        for kind, key in event_entities(event, self.config.track_ips):
            if kind == "card" and unbind:
                continue
            if key in self.graph.ent and key not in reached and self.graph.has_room(account, key):
                return True
        return False

    # -- updating ---------------------------------------------------------------------------

    def update(self, event: Event, seq: int, referenced: Event | None = None) -> None:
        """File the event (after it was decided). `referenced` is the event a feedback
        event points at, when the caller has it; `seq` times the expiry sweep."""
        self.graph.apply(event, referenced)
        self.updates += 1
        if seq % self.config.sweep_every == 0:
            self.graph.sweep()

    def sweep(self) -> int:
        return self.graph.sweep()

    # -- persistence ------------------------------------------------------------------------

    def export(self) -> bytes:
        """The whole state as MessagePack (no pickle: a snapshot is data, not code)."""
        body = {
            "format": FORMAT,
            "config": msgspec.to_builtins(self.config),
            "updates": self.updates,
            **self.graph.export_state(),
        }
        return msgspec.msgpack.encode(body)

    def restore(self, data: bytes) -> None:
        """Adopt an export taken with the same configuration."""
        body = msgspec.msgpack.decode(data)
        if (
            body.get("format") != FORMAT
            or msgspec.convert(body["config"], GraphConfig) != self.config
        ):
            raise ValueError("graph snapshot was taken with another format or configuration")
        self.graph.restore_state(body)
        self.updates = body["updates"]

    # -- inspection -------------------------------------------------------------------------

    def neighbourhood(self, kind: str, id: str, depth: int = 2) -> dict[str, Any]:
        """The nodes within `depth` hops of one entity and the links among them, as JSON:
        for `GET /v1/entities/{kind}/{id}/graph?depth=2`. Hubs are shown, not expanded;
        at most NEIGHBOURHOOD_MAX_NODES nodes (then `truncated` is true)."""
        if kind not in KINDS:
            raise ValueError(f"unknown entity kind {kind!r}; use one of {', '.join(KINDS)}")
        depth = max(0, min(depth, NEIGHBOURHOOD_MAX_DEPTH))
        root = (True, id) if kind == "account" else (False, ENTITY_PREFIX[kind] + id)
        seen, truncated = self._walk(root, depth)
        return {
            "root": _label(root),
            "depth": depth,
            "found": _adjacent(self.graph, root) is not None,
            "truncated": truncated,
            "nodes": [self._node(node, d) for node, d in seen.items()],
            "edges": self._edges_among(seen),
        }

    def _walk(self, root: tuple[bool, str], depth: int) -> tuple[dict[tuple[bool, str], int], bool]:
        seen = {root: 0}
        frontier = [root]
        hub = self.config.hub_degree
        for d in range(1, depth + 1):
            layer: list[tuple[bool, str]] = []
            for node in frontier:
                adjacent = _adjacent(self.graph, node) or {}
                if node != root and len(adjacent) > hub:
                    continue
                for other in adjacent:
                    nb = (not node[0], other)
                    if nb in seen:
                        continue
                    if len(seen) >= NEIGHBOURHOOD_MAX_NODES:
                        return seen, True
                    seen[nb] = d
                    layer.append(nb)
            frontier = layer
        return seen, False

    def _node(self, node: tuple[bool, str], distance: int) -> dict[str, Any]:
        degree = len(_adjacent(self.graph, node) or ())
        out: dict[str, Any] = {
            "key": _label(node),
            "kind": "account" if node[0] else split_key(node[1])[0],
            "id": node[1] if node[0] else split_key(node[1])[1],
            "distance": distance,
            "degree": degree,
            "hub": degree > self.config.hub_degree,
        }
        if node[0]:
            out["reported"] = node[1] in self.graph.reported
        return out

    def _edges_among(self, seen: dict[tuple[bool, str], int]) -> list[dict[str, Any]]:
        edges: list[dict[str, Any]] = []
        for is_account, account in seen:
            if not is_account:
                continue
            for key, e in self.graph.acc.get(account, {}).items():
                if (False, key) in seen:
                    edges.append(_edge_json(account, key, e))
        return edges


def _recent(accounts: dict[str, Edge], account: str | None, lo: EpochMs, hi: EpochMs) -> int:
    return sum(1 for a, e in accounts.items() if a != account and lo < e.first <= hi)


def _adjacent(graph: IdentityGraph, node: tuple[bool, str]) -> dict[str, Edge] | None:
    return (graph.acc if node[0] else graph.ent).get(node[1])


def _label(node: tuple[bool, str]) -> str:
    if node[0]:
        return f"account:{node[1]}"
    kind, ident = split_key(node[1])
    return f"{kind}:{ident}"


def _edge_json(account: str, key: str, e: Edge) -> dict[str, Any]:
    return {
        "source": f"account:{account}",
        "target": _label((False, key)),
        "first_seen": e.first,
        "last_seen": e.last,
        "bound_at": e.bound,
    }
