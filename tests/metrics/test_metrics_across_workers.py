"""Metrics add up over workers: two real processes count decisions, rule hits, rule
errors and latencies in one shared directory (prometheus_client's multiprocess mode),
and the exposition read by either — or by the parent — shows the sums."""

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from payguard.metrics import MULTIPROC_ENV, Metrics

WORKER = """
import os, sys
from pathlib import Path
from payguard.metrics import Metrics, share_across_workers
share_across_workers(Path(sys.argv[1])) if sys.argv[2] == "first" else None
m = Metrics()
n = int(sys.argv[3])
for i in range(n):
    m.observe("payment", "block" if i % 2 else "allow", 80 + i)
m.hits(["velocity"] * n)
m.rule_error("velocity", "KeyError")
m.storage_errors += 1
print(os.getpid(), flush=True)
"""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_two_workers_counts_add_up(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
        MULTIPROC_ENV: str(shared),
    }
    shared.mkdir()
    for role, n in (("first", 3), ("second", 5)):
        subprocess.run(
            [sys.executable, "-c", WORKER, str(shared), role, str(n)], env=env, check=True
        )
    assert len(list(shared.glob("*.db"))) >= 2  # one file per worker and kind
    old = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = str(shared)
    try:
        text = Metrics().render({"payguard_recorded_seq": 7})
    finally:
        if old is None:
            os.environ.pop(MULTIPROC_ENV)
        else:
            os.environ[MULTIPROC_ENV] = old
    got = samples(text)
    assert got[("payguard_decisions_total", (("action", "allow"), ("type", "payment")))] == 2 + 3
    assert got[("payguard_decisions_total", (("action", "block"), ("type", "payment")))] == 1 + 2
    assert got[("payguard_rule_hits_total", (("rule", "velocity"),))] == 3 + 5
    assert got[("payguard_rule_errors_total", (("error", "KeyError"), ("rule", "velocity")))] == 2
    assert got[("payguard_storage_errors_total", ())] == 2
    assert got[("payguard_decision_latency_us_count", ())] == 8
    assert got[("payguard_decision_latency_us_sum", ())] == sum(80 + i for i in range(3)) + sum(
        80 + i for i in range(5)
    )
    assert got[("payguard_recorded_seq", ())] == 7  # the answering process's gauge


def test_one_process_counts_its_own_engine() -> None:
    """Without a shared directory, each engine's metrics are its own."""
    first, second = Metrics(), Metrics()
    first.observe("payment", "allow", 10)
    first.duplicates += 2
    second.hits(["r1", "r2"])
    one, two = samples(first.render({})), samples(second.render({}))
    assert one[("payguard_decisions_total", (("action", "allow"), ("type", "payment")))] == 1
    assert one[("payguard_duplicate_events_total", ())] == 2
    assert ("payguard_rule_hits_total", (("rule", "r1"),)) not in one
    assert two[("payguard_rule_hits_total", (("rule", "r1"),))] == 1
    assert first.duplicates == 2 and second.rule_hits == {"r1": 1, "r2": 1}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["payment", "login"]),
            st.sampled_from(["allow", "block", "hold"]),
            st.sampled_from([0, 49, 50, 51, 100, 2_500, 49_999, 50_000, 50_001])
            | st.integers(min_value=0, max_value=10**7),
        ),
        max_size=40,
    ),
    st.integers(min_value=0, max_value=40),
)
def test_deferred_observations_render_as_sent_one_by_one(
    observed: list[tuple[str, str, int]], render_at: int
) -> None:
    """One process defers its decisions, latencies and rule hits to the render (`Metrics.send`): the
    text is the one sending each observation at once gives, bucket bounds included, with
    a render in the middle too."""
    deferred, direct = Metrics(), Metrics()
    assert deferred.deferred
    direct.deferred = False
    for i, (event_type, action, latency_us) in enumerate(observed):
        if i == render_at:
            assert deferred.render({}) == direct.render({})
        deferred.observe(event_type, action, latency_us)
        direct.observe(event_type, action, latency_us)
        fired = [f"r{latency_us % 7}", f"r{latency_us % 3}"][: 1 + latency_us % 2]
        deferred.hits(fired)
        direct.hits(fired)
    assert deferred.render({}) == direct.render({})
    assert deferred.decisions == direct.decisions
    assert deferred.rule_hits == direct.rule_hits
    assert deferred.render({}) == direct.render({})  # sent once, not twice
