"""Attack-chain patterns (sequence / CEP) as point-in-time features (docs/chains.md)."""

from payguard.chains.matcher import ChainMatch, ChainMatcher
from payguard.chains.pattern import (
    PARTITION_KEYS,
    ChainPattern,
    ChainSpec,
    load_chains,
    load_chains_file,
)

__all__ = [
    "PARTITION_KEYS",
    "ChainMatch",
    "ChainMatcher",
    "ChainPattern",
    "ChainSpec",
    "load_chains",
    "load_chains_file",
]
