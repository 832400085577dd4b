"""payguard: a real-time risk engine for quick payments and the account lifecycle around them.

    Event → validate + tokenize → point-in-time features → CEL rules → policy → Decision

The public API is this module's `__all__`; everything else may change between versions.
"""

from payguard.cel import RuleError
from payguard.config import Settings, load_settings
from payguard.decision import Decision, Reason
from payguard.engine import DuplicateEventError, Engine
from payguard.events import Event, EventDecoder, EventError, Tokenizer
from payguard.features import FeatureState, load_catalog
from payguard.ruleset import Ruleset, parse_ruleset

__all__ = [
    "Decision",
    "DuplicateEventError",
    "Engine",
    "Event",
    "EventDecoder",
    "EventError",
    "FeatureState",
    "Reason",
    "RuleError",
    "Ruleset",
    "Settings",
    "Tokenizer",
    "load_catalog",
    "load_settings",
    "parse_ruleset",
]
