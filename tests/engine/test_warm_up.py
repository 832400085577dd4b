"""`payguard warm-up` loads history into a real data directory without deciding it.

The engine that then opens that directory must read, for every later event, the features
an engine that replayed (decided) the same history reads: catalog, graph and chain
features alike. The one deliberate difference is money the replay sent to review or
blocked: warm-up history happened, so it counts as settled.
"""

import multiprocessing
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

from payguard.cli.main import app
from payguard.cli.warm_up import Checker
from payguard.config import Settings, load_settings
from payguard.engine import WARM_UP, Engine, compile_ruleset, warm_up_decision
from payguard.engine import core as engine_core
from payguard.events import Event
from payguard.features import FeatureState, load_catalog
from payguard.policy import stepup
from payguard.sim import SimConfig, simulate

ROOT = Path(__file__).resolve().parents[2]
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A simulated week split in two files: history (first 5 days) and what follows."""
    base = tmp_path_factory.mktemp("world")
    events, labels = base / "events.jsonl", base / "labels.jsonl"
    simulate(SimConfig(users=150, days=7, seed=5), events, labels)
    lines = events.read_bytes().splitlines(keepends=True)
    decode = msgspec.json.Decoder(dict[str, Any]).decode
    first_live = next(i for i, line in enumerate(lines) if decode(line)["type"] == "login")
    start = _ts(lines[first_live])
    cut = next(i for i, line in enumerate(lines) if _ts(line) >= start + 5 * DAY_MS)
    history, later = base / "history.jsonl", base / "later.jsonl"
    history.write_bytes(b"".join(lines[:cut]))
    later.write_bytes(b"".join(lines[cut:]))
    return history, later


def _ts(line: bytes) -> int:
    raw = msgspec.json.decode(line)["ts"]
    return int(datetime.fromisoformat(raw).timestamp() * 1000)


def _settings(data_dir: Path) -> Settings:
    return load_settings(
        env={
            "PAYGUARD_DATA_DIR": str(data_dir),
            "PAYGUARD_RULESET": str(ROOT / "rules" / "default.yaml"),
        }
    )


def _warm_up(*args: str) -> Any:
    return CliRunner().invoke(app, ["warm-up", *args], catch_exceptions=False)


def _features_of_later_events(engine: Engine, later: Path) -> list[dict[str, Any]]:
    out = []
    with later.open("rb") as lines:
        for line in lines:
            decision, _ = engine.process(engine.decoder.decode(line))
            assert not isinstance(decision.features, msgspec.UnsetType)
            out.append(decision.features)
    return out


def _settled(engine: Engine) -> set[str]:
    """Features that read what the engine decided (`settled`, `stopped`): warm-up history
    is filed as allowed, so they differ from a replay by design (docs/features.md)."""
    state = engine.features
    streams = state.streams
    return {
        n
        for n, f in state.layout.items()
        if f.stream >= 0 and (streams[f.stream].filter.settled or streams[f.stream].filter.stopped)
    }


def test_warm_up_then_decide_reads_what_a_replay_reads(
    world: tuple[Path, Path], tmp_path: Path
) -> None:
    history, later = world
    result = _warm_up(str(history), "--data-dir", str(tmp_path / "warm"))
    assert result.exit_code == 0, result.output
    warmed = Engine.open(_settings(tmp_path / "warm"))
    assert warmed.recover() == 0  # the snapshot holds the whole warm-up
    replayed = Engine.open(_settings(tmp_path / "replayed"))
    with history.open("rb") as lines:
        for line in lines:
            replayed.process(replayed.decoder.decode(line))
    try:
        # filing without deciding builds the same graph and chain matches (the chain
        # conditions' variables are built only when a condition runs, before filing)
        assert warmed.graph is not None and replayed.graph is not None
        assert warmed.chains is not None and replayed.chains is not None
        assert warmed.graph.export() == replayed.graph.export()
        assert warmed.chains.export() == replayed.chains.export()
        got = _features_of_later_events(warmed, later)
        want = _features_of_later_events(replayed, later)
        settled = _settled(warmed)
        assert len(got) == len(want) > 300
        for g, w in zip(got, want, strict=True):
            # the step-up features are read only when the policy challenges
            assert g.keys() ^ w.keys() <= stepup.FEATURES
            both = (g.keys() & w.keys()) - settled
            assert {k: g[k] for k in both} == {k: w[k] for k in both}
    finally:
        warmed.close()
        replayed.close()


def _with_repeats(lines: list[bytes]) -> list[bytes]:
    """Every seventh event twice in a row: the repeat is skipped and takes no place."""
    return [copy for i, line in enumerate(lines) for copy in [line] * (2 if i % 7 == 0 else 1)]


@pytest.mark.parametrize("seed", [3, 5, 11])
def test_the_two_process_load_equals_engine_warm(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's checker records each event (repeats skipped, the event a feedback event
    references read from its log) and the loader files it with `Engine.file`: the log,
    the sequence numbers and every state equal what `Engine.warm` leaves in one process.
    The seeds' worlds hold fraud reports and chargebacks, carrier signals and card binds
    (chain conditions), and span several batches and a flush. Sweeps, timed by sequence
    number, run every 97 events here, so a state filed at the wrong number differs."""
    monkeypatch.setattr(engine_core, "SWEEP_EVERY", 97)
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    simulate(SimConfig(users=80, days=5, seed=seed), events, labels)
    lines = _with_repeats(events.read_bytes().splitlines(keepends=True))
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"".join(lines))
    result = _warm_up(str(history), "--data-dir", str(tmp_path / "cli"))
    assert result.exit_code == 0, result.output
    one = Engine.open(_settings(tmp_path / "one"))
    with one.loading():
        for line in lines:
            one.warm(one.decoder.decode(line))
    two = Engine.open(_settings(tmp_path / "cli"))
    try:
        assert two.recover() == 0
        assert two.recorder.last_seq() == one.recorder.last_seq() > 1_000
        assert list(two.recorder.events_after(0)) == list(one.recorder.events_after(0))
        assert two.features.digest_items() == one.features.digest_items()
        assert two.graph is not None and one.graph is not None
        assert two.chains is not None and one.chains is not None
        assert two.graph.export() == one.graph.export()
        assert two.chains.export() == one.chains.export()
        first = next(e for _, e, _ in two.recorder.events_after(0))
        assert two.stored_decision(first.event_id) == warm_up_decision(first.event_id)
    finally:
        one.close()
        two.close()


def test_a_loader_failing_mid_load_leaves_the_log_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker records ahead of the loader, but commits only when told to: a loader
    that stops (here a crash while filing the 1,200th event) leaves no event recorded and
    no snapshot, and the checker process is gone."""
    events = tmp_path / "events.jsonl"
    events.write_text(_logins(2_000))
    filed = 0
    file = Engine.file

    def crashing(engine: Engine, seq: int, event: Event, referenced: Event | None) -> None:
        nonlocal filed
        filed += 1
        if filed == 1_200:
            raise RuntimeError("crash while filing")
        file(engine, seq, event, referenced)

    monkeypatch.setattr(Engine, "file", crashing)
    with pytest.raises(RuntimeError):
        _warm_up(str(events), "--data-dir", str(tmp_path / "data"))
    assert not multiprocessing.active_children()
    assert not (tmp_path / "data" / "state.snapshot").exists()
    monkeypatch.undo()
    engine = Engine.open(_settings(tmp_path / "data"))
    try:
        assert engine.recorder.last_seq() == 0 and engine.stored_decision("e0") is None
    finally:
        engine.close()


def test_the_checker_rolls_back_and_ends_when_the_loader_is_gone(tmp_path: Path) -> None:
    """A loader killed outright runs no clean-up: its ends of the pipes close with it. The
    checker (which a fork gives copies of those ends, and closes them) then meets a broken
    pipe, rolls its transaction back and ends, instead of holding the log's write lock."""
    events = tmp_path / "events.jsonl"
    events.write_text(_logins(3_000))
    settings = _settings(tmp_path / "data")
    Engine.open(settings).close()  # the data directory, as the loader opens it
    checker = Checker(events, settings.token_key.encode(), settings.data_dir / "payguard.db", 1_000)
    checker.record()
    first = next(checker.batches())
    assert first.first_seq == 1
    checker._receive.close()  # the loader's ends, as its death closes them
    checker._orders.close()
    checker._process.join(timeout=30)
    assert not checker._process.is_alive()
    engine = Engine.open(settings)
    try:
        assert engine.recorder.last_seq() == 0 and engine.stored_decision("e0") is None
    finally:
        engine.close()


def test_warm_up_survives_a_lost_snapshot(world: tuple[Path, Path], tmp_path: Path) -> None:
    """The events are in the log: without the snapshot, recovery rebuilds the same state,
    and a warm-up event's id is answered from the idempotency memory."""
    history, _ = world
    assert _warm_up(str(history), "--data-dir", str(tmp_path)).exit_code == 0
    engine = Engine.open(_settings(tmp_path))
    digest = engine.features.digest_items()
    first: Event = next(e for _, e, _ in engine.recorder.events_after(0))
    engine.close()
    (tmp_path / "state.snapshot").unlink()
    reopened = Engine.open(_settings(tmp_path))
    try:
        assert reopened.features.digest_items() == digest
        decision, repeat = reopened.process(first)
        assert repeat and decision.action == "allow" and decision.ruleset == WARM_UP
    finally:
        reopened.close()


def test_warm_up_refuses_a_data_directory_with_events(
    world: tuple[Path, Path], tmp_path: Path
) -> None:
    history, _ = world
    assert _warm_up(str(history), "--data-dir", str(tmp_path)).exit_code == 0
    again = _warm_up(str(history), "--data-dir", str(tmp_path))
    assert again.exit_code == 2
    assert "already holds" in again.output and "--append" in again.output
    resumed = _warm_up(str(history), "--data-dir", str(tmp_path), "--append")
    assert resumed.exit_code == 0
    assert "warmed up 0 events" in resumed.output


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"event_id":"a","type":"login","ts":"yesterday"}'], "line 2: event a: ts:"),
        (["not json"], "line 2:"),
        (
            [
                '{"event_id":"a","type":"login","ts":"2026-10-01T09:00:00+08:00","user_id":"u"}',
                '{"event_id":"a","type":"login","ts":"2026-10-01T09:05:00+08:00","user_id":"u"}',
            ],
            "line 3: event_id 'a' appears earlier with another payload",
        ),
    ],
)
def test_bad_input_exits_2_with_nothing_written(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    events = tmp_path / "events.jsonl"
    good = '{"event_id":"g","type":"login","ts":"2026-10-01T08:00:00+08:00","user_id":"u"}'
    events.write_text("\n".join([good, *lines]) + "\n")
    result = _warm_up(str(events), "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 2
    assert message in result.output and "nothing was loaded" in result.output
    assert not (tmp_path / "data").exists()


def test_warm_up_money_counts_as_settled_and_decides_nothing(tmp_path: Path) -> None:
    """History happened: its money counts against limits, and warm-up places no hold and
    counts no decision, even for a payment the rules would stop."""
    engine = Engine.open(_settings(tmp_path))
    try:
        pay = engine.decoder.decode(
            b'{"event_id":"h1","type":"payment","ts":"2026-10-01T09:00:00+08:00",'
            b'"user_id":"u1","amount":"90000.00","channel":"app",'
            b'"merchant":{"id":"m1","category":"gift_card"}}'
        )
        assert engine.warm(pay) and not engine.warm(pay)  # a repeat is skipped
        later = msgspec.structs.replace(pay, event_id="h2", ts=pay.ts + 60_000)
        plan = engine.features.plan(["sum_amount_money_settled_by_user_24h"])
        assert engine.features.snapshot(later, plan) == {
            "sum_amount_money_settled_by_user_24h": 9_000_000
        }
        assert engine.metrics.decisions == {}
        assert engine.holds.get("hold-h1") is None
        assert engine.stored_decision("h1") == warm_up_decision("h1")
        assert (
            warm_up_decision("h1").ruleset == WARM_UP and warm_up_decision("h1").action == "allow"
        )
    finally:
        engine.close()


def _logins(count: int, start: int = 0) -> str:
    """`count` valid login lines of distinct events and users, a minute apart."""
    first_ms = 1_759_276_800_000  # 2025-10-01T00:00:00Z
    return "".join(
        msgspec.json.encode(
            {
                "event_id": f"e{i}",
                "type": "login",
                "ts": first_ms + i * 60_000,
                "user_id": f"u{i % 97}",
                "device_id": f"d{i % 89}",
            }
        ).decode()
        + "\n"
        for i in range(start, start + count)
    )


def test_a_bad_line_after_many_flushes_leaves_the_directory_as_it_was(
    world: tuple[Path, Path], tmp_path: Path
) -> None:
    """The load is one transaction: rows flushed before the bad line are rolled back,
    and no snapshot of the half-filed state is written."""
    bad = '{"event_id":"x","type":"login","ts":"yesterday","user_id":"u"}\n'
    events = tmp_path / "events.jsonl"
    events.write_text(_logins(2_500) + bad)
    result = _warm_up(str(events), "--data-dir", str(tmp_path / "fresh"))
    assert result.exit_code == 2 and "line 2501:" in result.output
    assert not (tmp_path / "fresh").exists()

    history, _ = world
    data = tmp_path / "data"
    assert _warm_up(str(history), "--data-dir", str(data)).exit_code == 0
    snapshot = (data / "state.snapshot").read_bytes()
    engine = Engine.open(_settings(data))
    seq, digest = engine.recorder.last_seq(), engine.features.digest_items()
    engine.close()
    result = _warm_up(str(events), "--data-dir", str(data), "--append")
    assert result.exit_code == 2 and "nothing was loaded" in result.output
    assert (data / "state.snapshot").read_bytes() == snapshot
    reopened = Engine.open(_settings(data))
    try:
        assert reopened.recover() == 0
        assert reopened.recorder.last_seq() == seq
        assert reopened.features.digest_items() == digest
        assert reopened.stored_decision("e0") is None
    finally:
        reopened.close()


def test_append_refuses_a_recorded_id_with_another_payload(tmp_path: Path) -> None:
    """Found while loading (the recorded log is read then): rolled back, exit 2."""
    first, data = tmp_path / "first.jsonl", tmp_path / "data"
    first.write_text(_logins(3))
    assert _warm_up(str(first), "--data-dir", str(data)).exit_code == 0
    changed = tmp_path / "changed.jsonl"
    changed.write_text(_logins(1_500, start=3) + _logins(3).replace('"u1"', '"u2"'))
    result = _warm_up(str(changed), "--data-dir", str(data), "--append")
    assert result.exit_code == 2
    assert "event 1502 of the file: event_id 'e1'" in result.output
    engine = Engine.open(_settings(data))
    try:
        assert engine.recorder.last_seq() == 3 and engine.stored_decision("e3") is None
    finally:
        engine.close()
    more = tmp_path / "more.jsonl"
    more.write_text(_logins(5))  # e0..e2 already recorded, e3 and e4 new
    resumed = _warm_up(str(more), "--data-dir", str(data), "--append")
    assert resumed.exit_code == 0 and "warmed up 2 events (3 already recorded)" in resumed.output


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_failed_load_rolls_the_log_back_and_is_never_snapshotted(
    store: str, tmp_path: Path
) -> None:
    """`Engine.loading`: records inside are durable together; an exception discards
    them all (flushed ones too) and the engine writes no snapshot of its state."""
    settings = msgspec.structs.replace(_settings(tmp_path), flush_every=2)
    if store == "sqlite":
        engine = Engine.open(settings)
    else:
        features = FeatureState(load_catalog(), settings.utc_offset)
        ruleset = compile_ruleset((ROOT / "rules" / "default.yaml").read_text(), features)
        engine = Engine.in_memory(settings, features, ruleset)
    decode = engine.decoder.decode
    events = [decode(line) for line in _logins(5).splitlines()]
    with engine.loading():
        for event in events[:2]:
            assert engine.warm(event)
        assert engine.recorder.last_seq() == 0  # not durable before the load ends
    assert engine.recorder.last_seq() == 2
    with pytest.raises(RuntimeError), engine.loading():
        for event in events[2:]:
            engine.warm(event)
            engine.flush()
        raise RuntimeError("interrupted")
    assert engine.recorder.last_seq() == 2
    assert engine.stored_decision("e1") is not None and engine.stored_decision("e2") is None
    assert [e.event_id for _, e, _ in engine.recorder.events_after(0)] == ["e0", "e1"]
    engine.close()
    assert not (tmp_path / "state.snapshot").exists()
    if store == "sqlite":  # the log alone rebuilds the state of its two events
        reopened = Engine.open(settings)
        try:
            assert reopened.recover() == 2
        finally:
            reopened.close()
