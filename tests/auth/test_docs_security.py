"""docs/security.md's route table is ROUTE_SCOPES, row for row."""

from pathlib import Path

from payguard.api.access import OPEN, ROUTE_SCOPES
from payguard.auth import SCOPES

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_the_documented_route_table_is_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- route-scopes:begin -->")[1].split("<!-- route-scopes:end -->")[0]
    rows = [line.strip("|").split("|") for line in table.strip().splitlines()[2:]]
    documented = {(m.strip(), p.strip()): s.strip() for m, p, s in rows}
    assert documented == {k: v for k, v in ROUTE_SCOPES.items() if v != OPEN}


def test_every_scope_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for scope in SCOPES:
        assert f"| `{scope}` |" in text
