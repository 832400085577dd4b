"""The online identity graph: accounts linked through the identities, phones, devices,
cards, payees (and optionally IPs) they use, as point-in-time features (docs/graph.md)."""

from payguard.graph.model import KINDS, GraphConfig
from payguard.graph.state import IdentityGraph
from payguard.graph.variables import GraphFeatures

__all__ = ["KINDS", "GraphConfig", "GraphFeatures", "IdentityGraph"]
