"""Attack-chain patterns (sequence / CEP) as point-in-time features (docs/chains.md)."""

from payguard.chains.inputs import (
    ChainInputs,
    chain_variables,
    plan_inputs,
    recomputed_variables,
)
from payguard.chains.matcher import ChainMatch, ChainMatcher, Variables
from payguard.chains.pattern import (
    PARTITION_KEYS,
    ChainPattern,
    ChainSpec,
    load_chains,
    load_chains_file,
)

__all__ = [
    "PARTITION_KEYS",
    "ChainInputs",
    "ChainMatch",
    "ChainMatcher",
    "ChainPattern",
    "ChainSpec",
    "Variables",
    "chain_variables",
    "load_chains",
    "load_chains_file",
    "plan_inputs",
    "recomputed_variables",
]
