"""What the identity graph is made of: its settings, node kinds, edges, and which links an
event carries.

The graph is bipartite: accounts on one side, the things accounts use on the other
(identities, phones, devices, cards, payees and, optionally, IPs). Two accounts are related
only through an entity they share, so every edge is account–entity and a component is a
set of accounts tied together by shared entities.
"""

import msgspec

from payguard.events import LABEL_TYPES, OUTCOME_TYPES, Event
from payguard.features import parse_duration
from payguard.types import EpochMs

ENTITY_PREFIX: dict[str, str] = {
    "identity": "i:",
    "phone": "p:",
    "device": "d:",
    "card": "c:",
    "payee": "y:",
    "ip": "n:",
}
"""Entity node keys are `<prefix><id>`; account keys are the bare user id (accounts and
entities live in separate maps, so the two can never collide)."""

KIND_OF_PREFIX: dict[str, str] = {p[0]: kind for kind, p in ENTITY_PREFIX.items()}
KINDS: tuple[str, ...] = ("account", *ENTITY_PREFIX)
FALLBACK_KINDS: frozenset[str] = frozenset({"identity", "phone"})
"""Kinds that belong to the person, not the operation: when an event does not carry one,
the graph uses the account's own (a payment rarely repeats the ID number)."""


class GraphConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Caps and horizons of the identity graph (docs/graph.md explains each policy)."""

    windows: tuple[str, ...] = ("24h", "30d")
    """Windows of the `…_<window>` counts, over edge first-seen (or bind) times."""
    track_ips: bool = False
    """IPs are high fan-out (carrier NAT, public Wi-Fi); off unless asked for."""
    hub_degree: int = 50
    """A node with more neighbours than this is a hub: counted, never traversed."""
    max_degree: int = 1_000
    """No node holds more edges; links to a full node are dropped (and counted)."""
    max_component_accounts: int = 200
    """Component search stops at the first layer boundary with this many accounts."""
    max_ball_nodes: int = 2_000
    """… or with this many nodes of any kind."""
    max_distance: int = 4
    """Hops searched for the nearest reported account (2 = one shared entity away)."""
    horizon: str = "180d"
    """Edges idle for longer expire at the next sweep; reports older than this too."""
    standing_horizon: str = "1095d"
    """Standing links are set once and stand until removed: identity edges (an ID number
    is sent at sign-up or KYC, never repeated) and card bindings (a card bound years ago
    and unused is still bound; `card_unbind` removes it). They are kept for three years
    of idleness rather than 180 days."""
    max_refs: int = 100_000
    """event_id → account entries kept (oldest dropped) to resolve feedback events; 0 when
    the caller always passes the referenced event (the engine reads it from its log)."""
    sweep_every: int = 50_000
    """`update(event, seq)` sweeps expired edges when seq is a multiple of this."""

    def validate(self) -> "GraphConfig":
        for text in (*self.windows, self.horizon, self.standing_horizon):
            parse_duration(text)
        if self.max_component_accounts < 2 or self.max_ball_nodes < 2:
            raise ValueError("component caps must be at least 2")
        if min(self.hub_degree, self.max_degree, self.sweep_every) < 1 or self.max_refs < 0:
            raise ValueError("graph caps must be positive")
        return self


class Edge:
    """One account–entity link, shared by both endpoints' adjacency maps.

    `bound` is the time of the first `card_bind` of the current binding (cards only; None
    while the card was only used). `card_unbind` deletes the edge; a later bind creates a
    fresh one, so its first-seen and bind times restart."""

    __slots__ = ("bound", "first", "last")

    def __init__(self, first: EpochMs, last: EpochMs, bound: EpochMs | None) -> None:
        self.first = first
        self.last = last
        self.bound = bound


def entity_key(kind: str, value: str) -> str:
    return ENTITY_PREFIX[kind] + value


def split_key(key: str) -> tuple[str, str]:
    """An entity key → (kind, id)."""
    return KIND_OF_PREFIX[key[0]], key[2:]


def event_entities(event: Event, track_ips: bool) -> list[tuple[str, str]]:
    """(kind, entity key) of every entity the event carries, in a fixed order."""
    found: list[tuple[str, str]] = []
    if event.id_number is not None:
        found.append(("identity", "i:" + event.id_number))
    if event.phone is not None:
        found.append(("phone", "p:" + event.phone))
    if event.device_id is not None:
        found.append(("device", "d:" + event.device_id))
    if event.card is not None:
        found.append(("card", "c:" + event.card.token))
    if event.payee is not None:
        found.append(("payee", "y:" + event.payee.id))
    if track_ips and event.ip is not None:
        found.append(("ip", "n:" + event.ip))
    return found


def links(event: Event) -> bool:
    """Whether the event ties its account to the entities it carries: it has an account,
    is not feedback (a report is filed by the victim, not by the fraud) nor an outcome (a
    challenge result answers an event that already linked its device) and did not fail
    (a failed login is someone trying the account, not the account's own device)."""
    if event.user_id is None or event.success is False:
        return False
    return event.type not in _NOT_LINKING


_NOT_LINKING: frozenset[str] = LABEL_TYPES | OUTCOME_TYPES
