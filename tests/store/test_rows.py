"""The stored decision row: `stored_row`'s plain tuple must encode byte for byte as the
array-like `Row` it stands for (rows already in logs were written from `Row`), and decode
back to the decision it came from."""

from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from payguard.decision import ChainEvidence, Decision, HoldTerms, Reason, ShadowHit
from payguard.store.rows import Row, decision_of, stored_row

_TEXT = st.text(max_size=8)
_ACTIONS = st.sampled_from(["allow", "challenge", "review", "hold", "block"])
_UNSET: Any = st.just(msgspec.UNSET)


def _or_unset(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(_UNSET, strategy)


_REASONS = st.lists(
    st.builds(
        Reason,
        code=_TEXT,
        rule=_TEXT,
        text=_TEXT,
        chains=_or_unset(
            st.lists(
                st.builds(
                    ChainEvidence,
                    chain=_TEXT,
                    step=st.integers(1, 5),
                    event_ids=st.lists(_TEXT, max_size=3),
                ),
                max_size=2,
            )
        ),
    ),
    max_size=3,
)
_FEATURES = st.dictionaries(
    st.text(min_size=1, max_size=12),
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.booleans()),
    max_size=30,
)
DECISIONS = st.builds(
    Decision,
    event_id=_TEXT,
    action=_ACTIONS,
    score=st.integers(0, 100),
    reasons=_REASONS,
    ruleset=_TEXT,
    model=st.one_of(st.none(), _TEXT),
    latency_us=st.integers(0, 10**7),
    challenge=_or_unset(st.lists(st.sampled_from(["sms_otp", "face"]), max_size=2)),
    hold=_or_unset(st.builds(HoldTerms, hold_id=_TEXT, release_ts=st.integers(0, 2**50))),
    model_score=_or_unset(st.floats(0, 1)),
    features=_or_unset(_FEATURES),
    shadow=_or_unset(
        st.lists(
            st.builds(ShadowHit, rule=_TEXT, action=_ACTIONS, score=st.integers(0, 100)), max_size=2
        )
    ),
    rule_errors=_or_unset(st.lists(st.dictionaries(_TEXT, _TEXT, max_size=2), max_size=2)),
)


@given(DECISIONS)
def test_the_tuple_encodes_as_the_row_struct(decision: Decision) -> None:
    encode = msgspec.msgpack.Encoder().encode
    row = stored_row(decision)
    assert encode(row) == encode(Row(*row))


@given(DECISIONS)
def test_a_row_decodes_to_its_decision(decision: Decision) -> None:
    encoded = msgspec.msgpack.Encoder().encode(stored_row(decision))
    row = msgspec.msgpack.Decoder(Row).decode(encoded)
    features = decision.features
    names = None if features is msgspec.UNSET else tuple(features)  # type: ignore[arg-type]
    assert decision_of(row, names) == decision
