"""Which held scopes grant which needed scope."""

import pytest

from payguard.auth import SCOPES, grants, parse_scope


@pytest.mark.parametrize("needed", SCOPES)
def test_admin_grants_every_scope_and_each_scope_itself(needed: str) -> None:
    assert grants(["admin"], needed)
    assert grants([needed], needed)


def test_no_scope_implies_another_except_admin_and_wildcards() -> None:
    for held in SCOPES:
        for needed in SCOPES:
            wildcard = held == "cases:*" and needed.startswith("cases:")
            expected = held in ("admin", needed) or wildcard
            assert grants([held], needed) is expected, (held, needed)
    assert grants(["cases:*"], "cases:read") and grants(["cases:*"], "cases:write")
    assert not grants(["cases:*"], "lists:write")
    assert not grants(["cases:*"], "casesx")
    assert not grants([], "decisions:read")


def test_parse_scope_names_the_known_ones() -> None:
    assert parse_scope("rules:admin") == "rules:admin"
    with pytest.raises(ValueError, match="events:write"):
        parse_scope("root")
