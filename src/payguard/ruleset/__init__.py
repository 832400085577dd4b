"""The ruleset document: rules, attack-chain patterns, policy and params under one version.

It sits above `rules/`, `chains/` and `policy/` because it holds all three; none of them
imports it back.
"""

from payguard.cel import RuleError
from payguard.ruleset.document import MAX_RULES, Ruleset, RulesetFile, load_ruleset, parse_ruleset

__all__ = ["MAX_RULES", "RuleError", "Ruleset", "RulesetFile", "load_ruleset", "parse_ruleset"]
