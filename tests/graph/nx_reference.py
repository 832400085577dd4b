"""Brute-force twin of `GraphFeatures`, on networkx.

It keeps the raw link state in an `nx.Graph` (nodes `("a", user)` and `("e", key)`, edge
attributes `first`, `last`, `bound`) under the same documented update rules, and computes
every feature from scratch for each event: counts from neighbour lists, components from
`nx.single_source_shortest_path_length` on a directed copy without hub out-edges, and the
search caps from the distance layers. No code is shared with the fast implementation.
"""

from collections import OrderedDict
from typing import Any

import networkx as nx

from payguard.events import Event
from payguard.features import NEVER, parse_duration
from payguard.graph import GraphConfig

PREFIX = {"identity": "i:", "phone": "p:", "device": "d:", "card": "c:", "payee": "y:", "ip": "n:"}
Node = tuple[str, str]


class NxReference:
    def __init__(self, config: GraphConfig) -> None:
        self.cfg = config
        self.g: nx.Graph = nx.Graph()
        self.reported: dict[str, int] = {}
        self.refs: OrderedDict[str, str] = OrderedDict()
        self.watermark = 0

    # -- the update rules, restated --------------------------------------------------------

    def entities(self, e: Event) -> list[tuple[str, str]]:
        raw = [
            ("identity", e.id_number),
            ("phone", e.phone),
            ("device", e.device_id),
            ("card", e.card.token if e.card else None),
            ("payee", e.payee.id if e.payee else None),
            ("ip", e.ip if self.cfg.track_ips else None),
        ]
        return [(kind, PREFIX[kind] + v) for kind, v in raw if v is not None]

    def linking(self, e: Event) -> bool:
        return (
            e.user_id is not None
            and e.type not in ("fraud_report", "chargeback", "label", "challenge_result")
            and e.success is not False
        )

    def update(self, e: Event, seq: int, referenced: Event | None = None) -> None:
        if e.type in ("fraud_report", "chargeback", "label"):
            acct = referenced.user_id if referenced else self.refs.get(e.ref_event_id or "")
            if acct is not None and e.label != "not_fraud":
                self.reported[acct] = max(self.reported.get(acct, e.ts), e.ts)
        elif self.linking(e):
            a = ("a", e.user_id or "")
            for kind, key in self.entities(e):
                node = ("e", key)
                if kind == "card" and e.type == "card_unbind":
                    if self.g.has_edge(a, node):
                        self.g.remove_edge(a, node)
                    continue
                self._link(a, node, e.ts, kind == "card" and e.type == "card_bind")
            self._drop_isolated()
        if e.user_id is not None and e.type not in ("fraud_report", "chargeback", "label"):
            self.refs.pop(e.event_id, None)
            self.refs[e.event_id] = e.user_id
            while len(self.refs) > self.cfg.max_refs:
                self.refs.popitem(last=False)
        self.watermark = max(self.watermark, e.ts)
        if seq % self.cfg.sweep_every == 0:
            self.sweep()

    def _link(self, a: Node, node: Node, ts: int, bind: bool) -> None:
        g = self.g
        if g.has_edge(a, node):
            d = g.edges[a, node]
            d["first"], d["last"] = min(d["first"], ts), max(d["last"], ts)
            if bind:
                d["bound"] = ts if d["bound"] is None else min(d["bound"], ts)
            return
        full = self.cfg.max_degree
        if self._deg(a) >= full or self._deg(node) >= full:
            return
        g.add_edge(a, node, first=ts, last=ts, bound=ts if bind else None)

    def _deg(self, n: Node) -> int:
        return int(self.g.degree(n)) if n in self.g else 0

    def _drop_isolated(self) -> None:
        self.g.remove_nodes_from([n for n in self.g if self.g.degree(n) == 0])

    def sweep(self) -> None:
        cut = self.watermark - parse_duration(self.cfg.horizon)
        standing_cut = self.watermark - parse_duration(self.cfg.standing_horizon)
        stale = [
            (x, y)
            for x, y, d in self.g.edges(data=True)
            if d["last"] <= (standing_cut if _is_identity(x, y) or d["bound"] else cut)
        ]
        self.g.remove_edges_from(stale)
        self._drop_isolated()
        self.reported = {a: ts for a, ts in self.reported.items() if ts > cut}

    # -- features from scratch -------------------------------------------------------------

    def snapshot(self, e: Event) -> dict[str, Any]:
        out: dict[str, Any] = {}
        windows = [("", None)] + [(f"_{w}", parse_duration(w)) for w in self.cfg.windows]
        kinds = [k for k in PREFIX if k != "ip" or self.cfg.track_ips]
        for kind in kinds:
            keys = self._keys(e, kind)
            for suffix, ms in windows:
                out[f"graph_other_accounts_by_{kind}{suffix}"] = max(
                    (self._others(("e", k), e, ms) for k in keys), default=0
                )
        for suffix, ms in windows:
            out[f"graph_cards_by_account{suffix}"] = self._cards(e, ms)
        out.update(self._owners(e))
        out.update(self._structure(e))
        return out

    def _keys(self, e: Event, kind: str) -> list[str]:
        own = [k for kd, k in self.entities(e) if kd == kind]
        if own or kind not in ("identity", "phone") or e.user_id is None:
            return own
        a = ("a", e.user_id)
        if a not in self.g:
            return []
        return [n[1] for n in self.g[a] if n[1].startswith(PREFIX[kind])]

    def _others(self, node: Node, e: Event, window: int | None) -> int:
        if node not in self.g:
            return 0
        n = 0
        for a in self.g[node]:
            if a[1] == e.user_id:
                continue
            first = self.g.edges[a, node]["first"]
            if window is None or e.ts - window < first <= e.ts:
                n += 1
        return n

    def _cards(self, e: Event, window: int | None) -> int:
        a = ("a", e.user_id or "")
        if e.user_id is None or a not in self.g:
            return 0
        n = 0
        for node in self.g[a]:
            bound = self.g.edges[a, node]["bound"]
            if not node[1].startswith("c:") or bound is None:
                continue
            if window is None or e.ts - window < bound <= e.ts:
                n += 1
        return n

    def _idents(self, user: str | None) -> set[str]:
        a = ("a", user or "")
        if user is None or a not in self.g:
            return set()
        return {n[1] for n in self.g[a] if n[1].startswith("i:")}

    def _owners(self, e: Event) -> dict[str, bool]:
        owners = []
        node = ("e", "c:" + e.card.token) if e.card else None
        if node is not None and node in self.g:
            owners = [
                a[1]
                for a in self.g[node]
                if a[1] != e.user_id and self.g.edges[a, node]["bound"] is not None
            ]
        mine = self._idents(e.user_id) | ({"i:" + e.id_number} if e.id_number else set())
        other = any(self._idents(o) and not (self._idents(o) & mine) for o in owners)
        return {
            "graph_card_bound_elsewhere": bool(owners),
            "graph_card_bound_other_identity": other,
        }

    def distances(self, start: Node) -> dict[Node, int]:
        """Hops from the start over a copy in which hubs (degree > hub_degree, except the
        start) have no out-edges: they are reached, never passed through."""
        if start not in self.g:
            return {start: 0}
        d = nx.DiGraph()
        d.add_node(start)
        for x, y in self.g.edges():
            for u, v in ((x, y), (y, x)):
                if u == start or self.g.degree(u) <= self.cfg.hub_degree:
                    d.add_edge(u, v)
        return dict(nx.single_source_shortest_path_length(d, start))

    def ball(self, start: Node) -> dict[Node, int]:
        """All nodes up to the first distance layer at which a cap is reached."""
        dist = self.distances(start)
        deepest = max(dist.values())
        for r in range(deepest + 1):
            inside = [n for n, dn in dist.items() if dn <= r]
            accounts = sum(1 for n in inside if n[0] == "a")
            if (
                accounts >= self.cfg.max_component_accounts
                or len(inside) >= self.cfg.max_ball_nodes
            ):
                return {n: dn for n, dn in dist.items() if dn <= r}
        return dist

    def _structure(self, e: Event) -> dict[str, Any]:
        if e.user_id is None:
            return {
                "graph_component_accounts": 0,
                "graph_component_reported": 0,
                "graph_reported_distance": NEVER,
                "graph_new_link": False,
            }
        start = ("a", e.user_id)
        ball = self.ball(start)
        accounts = [n[1] for n in ball if n[0] == "a"]
        near = [
            d
            for n, d in ball.items()
            if n[0] == "a" and n[1] in self.reported and d <= self.cfg.max_distance
        ]
        return {
            "graph_component_accounts": min(len(accounts), self.cfg.max_component_accounts),
            "graph_component_reported": sum(1 for a in accounts if a in self.reported),
            "graph_reported_distance": min(near, default=NEVER),
            "graph_new_link": self._new_link(e, start, ball),
        }

    def _new_link(self, e: Event, start: Node, ball: dict[Node, int]) -> bool:
        if not self.linking(e) or start not in self.g:
            return False
        for kind, key in self.entities(e):
            node = ("e", key)
            if kind == "card" and e.type == "card_unbind":
                continue
            if node in self.g and node not in ball:
                room = self._deg(start) < self.cfg.max_degree
                if room and self._deg(node) < self.cfg.max_degree:
                    return True
        return False


def _is_identity(x: Node, y: Node) -> bool:
    entity = x if x[0] == "e" else y
    return entity[1].startswith("i:")
