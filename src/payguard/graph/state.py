"""The identity graph's mutable state: adjacency sets with edge times, labels, and the
bounded searches the features read.

Structure: two adjacency maps, account → {entity key: Edge} and entity key →
{account: Edge}, sharing one Edge object per link. A link is added or refreshed in O(1),
and deleted in O(1) (`card_unbind`, expiry), which union-find cannot do; components are
found by a bounded breadth-first search instead of being maintained, so a deletion is
exact the moment it happens and nothing needs rebuilding.

The search is layered and stops only at layer boundaries, so what it explores (the
"ball") depends on the graph alone, never on dict order: hubs are reached but not
expanded, and the search stops after the first layer at which the ball holds
`max_component_accounts` accounts or `max_ball_nodes` nodes.
"""

from collections import OrderedDict
from typing import Any

from payguard.events import LABEL_TYPES, Event, is_fraud_verdict
from payguard.features import parse_duration
from payguard.graph.model import Edge, GraphConfig, event_entities, links
from payguard.types import EpochMs

Adjacency = dict[str, dict[str, Edge]]


class Ball:
    """What one bounded search found: distance (hops) of each account and entity reached."""

    __slots__ = ("accounts", "entities")

    def __init__(self, accounts: dict[str, int], entities: dict[str, int]) -> None:
        self.accounts = accounts
        self.entities = entities


class IdentityGraph:
    """Accounts, entities and the links between them, updated in arrival order."""

    def __init__(self, config: GraphConfig) -> None:
        self.config = config.validate()
        self.acc: Adjacency = {}
        self.ent: Adjacency = {}
        self.reported: dict[str, EpochMs] = {}
        """Accounts named by a fraud verdict (a fraud_report, a chargeback or a `fraud`
        label) → time of the latest one."""
        self.refs: OrderedDict[str, str] = OrderedDict()
        """event_id → account, oldest first, at most `max_refs` entries. An OrderedDict:
        dropping the oldest entry of a plain dict (`next(iter(d))`) scans the slots that
        earlier deletions left at its front, which grew to tens of µs per event once full."""
        self.watermark: EpochMs = 0
        self.dropped_links = 0
        self._horizon_ms = parse_duration(config.horizon)
        self._standing_horizon_ms = parse_duration(config.standing_horizon)

    # -- updates ----------------------------------------------------------------------------

    def apply(self, event: Event, referenced: Event | None = None) -> None:
        """File one event: a label if it is feedback (only a fraud verdict marks the account
        reported), else its links (or an unbind)."""
        if event.type in LABEL_TYPES:
            if is_fraud_verdict(event):
                self._label(event, referenced)
        elif links(event):
            self._link_event(event)
        if event.user_id is not None and self.config.max_refs and event.type not in LABEL_TYPES:
            self._remember(event.event_id, event.user_id)
        if event.ts > self.watermark:
            self.watermark = event.ts

    def _label(self, event: Event, referenced: Event | None) -> None:
        account = self.referenced_account(event, referenced)
        if account is not None:
            self.reported[account] = max(self.reported.get(account, event.ts), event.ts)

    def referenced_account(self, event: Event, referenced: Event | None) -> str | None:
        """The account a feedback event points at: the referenced event's, when the caller
        has it (the engine reads it from the durable log), else from the bounded memory."""
        if referenced is not None:
            return referenced.user_id
        return self.refs.get(event.ref_event_id) if event.ref_event_id is not None else None

    def _link_event(self, event: Event) -> None:
        account = event.user_id
        assert account is not None
        ts = event.ts
        unbind = event.type == "card_unbind"
        bind = event.type == "card_bind"
        for kind, key in event_entities(event, self.config.track_ips):
            if kind == "card" and unbind:
                self.unlink(account, key)
            else:
                self.link(account, key, ts, bind and kind == "card")

    def link(self, account: str, key: str, ts: EpochMs, bind: bool) -> None:
        """Add or refresh the account–entity edge (dropped if either end is full)."""
        edges = self.acc.get(account)
        edge = edges.get(key) if edges is not None else None
        if edge is None:
            if not self.has_room(account, key):
                self.dropped_links += 1
                return
            edge = Edge(ts, ts, ts if bind else None)
            self.acc.setdefault(account, {})[key] = edge
            self.ent.setdefault(key, {})[account] = edge
            return
        if ts < edge.first:
            edge.first = ts
        if ts > edge.last:
            edge.last = ts
        if bind and (edge.bound is None or ts < edge.bound):
            edge.bound = ts

    def has_room(self, account: str, key: str) -> bool:
        """Whether a new edge fits under `max_degree` at both ends."""
        cap = self.config.max_degree
        return len(self.acc.get(account, ())) < cap and len(self.ent.get(key, ())) < cap

    def unlink(self, account: str, key: str) -> None:
        edges = self.acc.get(account)
        if edges is None or key not in edges:
            return
        del edges[key]
        if not edges:
            del self.acc[account]
        accounts = self.ent[key]
        del accounts[account]
        if not accounts:
            del self.ent[key]

    def _remember(self, event_id: str, account: str) -> None:
        refs = self.refs
        if event_id in refs:
            refs.move_to_end(event_id)  # a re-sent id moves to the back, like a new one
        refs[event_id] = account
        if len(refs) > self.config.max_refs:
            refs.popitem(last=False)

    def sweep(self) -> int:
        """Drop edges idle past their horizon (standing links, identities and bound cards,
        past the longer one), then empty nodes and old reports; returns the edges dropped.
        Deterministic: the engine calls it at fixed sequence numbers."""
        cutoff = self.watermark - self._horizon_ms
        standing_cutoff = self.watermark - self._standing_horizon_ms
        # Only an edge older than the later cutoff can be stale, so the kind of the edge
        # is asked of those alone: one comparison for most of ~100,000s of edges, where
        # a call for each took most of the sweep (15 ms at 20k × 90 days, every
        # SWEEP_EVERY events on the request path, issue 16).
        later = max(cutoff, standing_cutoff)
        stale = [
            (account, key)
            for account, edges in self.acc.items()
            for key, edge in edges.items()
            if edge.last <= later
            and edge.last <= (standing_cutoff if _standing(key, edge) else cutoff)
        ]
        for account, key in stale:
            self.unlink(account, key)
        for account in [a for a, ts in self.reported.items() if ts <= cutoff]:
            del self.reported[account]
        return len(stale)

    # -- searches ---------------------------------------------------------------------------

    def ball(self, start: str, max_depth: int) -> Ball:
        """Layered search from an account over non-hub nodes (the start is always expanded),
        stopping at a layer boundary once a cap is reached or at `max_depth` hops."""
        cfg = self.config
        hub = cfg.hub_degree
        accounts = {start: 0}
        entities: dict[str, int] = {}
        frontier = [start]
        depth = 0
        while frontier and depth < max_depth:
            if len(accounts) >= cfg.max_component_accounts:
                break
            if len(accounts) + len(entities) >= cfg.max_ball_nodes:
                break
            depth += 1
            limit = hub if depth > 1 else None  # the start itself is always expanded
            if depth % 2:
                frontier = _expand(self.acc, frontier, entities, depth, limit)
            else:
                frontier = _expand(self.ent, frontier, accounts, depth, limit)
        return Ball(accounts, entities)

    def identities(self, account: str) -> set[str]:
        return {k for k in self.acc.get(account, ()) if k[0] == "i"}

    # -- persistence ------------------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        edges = [
            (account, key, e.first, e.last, e.bound)
            for account, entity_edges in self.acc.items()
            for key, e in entity_edges.items()
        ]
        return {
            "edges": edges,
            "reported": self.reported,
            "refs": list(self.refs.items()),
            "watermark": self.watermark,
            "dropped_links": self.dropped_links,
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        self.acc, self.ent = {}, {}
        for account, key, first, last, bound in state["edges"]:
            edge = Edge(first, last, bound)
            self.acc.setdefault(account, {})[key] = edge
            self.ent.setdefault(key, {})[account] = edge
        self.reported = dict(state["reported"])
        self.refs = OrderedDict(state["refs"])
        self.watermark = state["watermark"]
        self.dropped_links = state["dropped_links"]


def _standing(key: str, edge: Edge) -> bool:
    """An identity edge or a card binding: set once, standing until removed."""
    return key[0] == "i" or edge.bound is not None


def _expand(
    adjacency: Adjacency,
    frontier: list[str],
    seen: dict[str, int],
    depth: int,
    hub: int | None,
) -> list[str]:
    """One layer: the unseen neighbours of the frontier's nodes that are not hubs (nodes
    with more than `hub` neighbours; None: expand every node)."""
    layer: list[str] = []
    for node in frontier:
        neighbours = adjacency.get(node)
        if neighbours is None or (hub is not None and len(neighbours) > hub):
            continue
        for other in neighbours:
            if other not in seen:
                seen[other] = depth
                layer.append(other)
    return layer
