"""CEL conditions, shared by rules and attack-chain patterns: parse, check, compile, and
translate to Python where the translation is exact.

Neither `rules/` nor `chains/` owns this: a condition means the same thing wherever it is
written, so both compile it here (docs/rules.md, docs/chains.md).
"""

from payguard.cel.condition import (
    MAX_EXPANDED_CHARS,
    MAX_EXPRESSION_CHARS,
    CheckedCondition,
    CompiledCondition,
    RuleError,
    check_condition,
    compile_condition,
)
from payguard.cel.translate import Predicate, Untranslatable, predicate, translate

__all__ = [
    "MAX_EXPANDED_CHARS",
    "MAX_EXPRESSION_CHARS",
    "CheckedCondition",
    "CompiledCondition",
    "Predicate",
    "RuleError",
    "Untranslatable",
    "check_condition",
    "compile_condition",
    "predicate",
    "translate",
]
