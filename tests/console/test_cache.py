"""`Recent`: a value is reused for ttl_s, then computed again."""

from payguard.console.cache import Recent


def test_values_are_kept_for_their_ttl_only() -> None:
    now = [100.0]
    calls: list[str] = []
    recent: Recent[int] = Recent(5.0, clock=lambda: now[0])

    def compute(key: str) -> int:
        calls.append(key)
        return len(calls)

    assert recent.get("a", lambda: compute("a")) == 1
    now[0] = 104.9
    assert recent.get("a", lambda: compute("a")) == 1, "still fresh"
    assert recent.get("b", lambda: compute("b")) == 2, "another key is its own"
    now[0] = 105.0
    assert recent.get("a", lambda: compute("a")) == 3, "stale: computed again"
    assert calls == ["a", "b", "a"]
