"""Point-in-time entity features: declarative windows over event streams."""

from payguard.features.layout import NEVER
from payguard.features.spec import (
    DEFAULT_CATALOG_PATH,
    Catalog,
    EventFilter,
    FeatureSpec,
    load_catalog,
    parse_duration,
)
from payguard.features.state import SWEEP_EVERY, FeatureState, QueryPlan
from payguard.features.timeline import Timeline

__all__ = [
    "DEFAULT_CATALOG_PATH",
    "NEVER",
    "SWEEP_EVERY",
    "Catalog",
    "EventFilter",
    "FeatureSpec",
    "FeatureState",
    "QueryPlan",
    "Timeline",
    "load_catalog",
    "parse_duration",
]
