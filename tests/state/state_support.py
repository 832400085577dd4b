"""What the state tests share: Redis endpoints (skipped only when none answers), a
feature-only ruleset, engines on either backend."""

import functools
import os
import socket
from pathlib import Path

import pytest
import yaml

from payguard.cel.condition import RuleError
from payguard.config import Settings, load_settings
from payguard.engine import Engine
from payguard.engine.compile import compile_ruleset
from payguard.features import FeatureState, load_catalog
from payguard.outcomes import OutcomeBook
from payguard.ruleset import Ruleset
from payguard.state.redis import RedisClient, RedisState, connect
from payguard.store import Recorder

ROOT = Path(__file__).resolve().parents[2]
RULESET = ROOT / "rules" / "default.yaml"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_url() -> str:
    """The single Redis (PAYGUARD_TEST_REDIS or 127.0.0.1:6379)."""
    address = os.environ.get("PAYGUARD_TEST_REDIS", "127.0.0.1:6379")
    host, _, port = address.partition(":")
    if not _answers(host, int(port)):
        pytest.skip(f"no Redis answers on {address}")
    return f"redis://{address}/0"


def cluster_url() -> str:
    """The Redis Cluster (PAYGUARD_TEST_REDIS_CLUSTER, else 127.0.0.1:7000 if it answers);
    a set variable whose cluster does not answer is a failure, not a skip."""
    address = os.environ.get("PAYGUARD_TEST_REDIS_CLUSTER")
    if address is None:
        if not _answers("127.0.0.1", 7000):
            pytest.skip("no Redis Cluster: PAYGUARD_TEST_REDIS_CLUSTER unset, 7000 silent")
        address = "127.0.0.1:7000"
    return f"redis+cluster://{address}"


def clean_client(url: str, prefix: str) -> RedisClient:
    """A client with every key of `prefix` deleted (each test uses its own prefix)."""
    client = connect(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):  # the cluster client splits a DEL by slot
        client.delete(*keys[start : start + 1000])
    return client


def settings() -> Settings:
    """Settings with the graph and chains off: the state seam carries features, phone
    links, watched history and idempotency (the graph and chains are not in it yet)."""
    return load_settings(env={"PAYGUARD_GRAPH_CHAINS": "0"})


@functools.cache
def feature_ruleset_text() -> str:
    """rules/default.yaml without its chains and without the rules that read the graph
    or chains (dropped one by one as compilation names them; once per session: a second
    of compiling each time)."""
    doc = yaml.safe_load(RULESET.read_text(encoding="utf-8"))
    doc.pop("chains", None)
    features = FeatureState(load_catalog(settings().features))
    while True:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        try:
            compile_ruleset(text, features, graph_chains=False)
        except RuleError as exc:
            name = exc.rule
            kept = [r for r in doc["rules"] if r["id"] != name]
            if len(kept) == len(doc["rules"]):
                signals = doc.get("signals", {})
                if name not in signals:
                    raise
                del signals[name]
            doc["rules"] = kept
            continue
        return text


def engine(
    ruleset_text: str,
    *,
    state: RedisState | None = None,
    recorder: Recorder | None = None,
    outcomes: OutcomeBook | None = None,
) -> Engine:
    """An engine on a memory record (or the given shared one) and the given state."""
    config = settings()
    features = (
        state.features
        if state is not None
        else FeatureState(load_catalog(config.features), config.utc_offset)
    )
    ruleset: Ruleset = compile_ruleset(ruleset_text, features, graph_chains=False)
    built = Engine.in_memory(config, features, ruleset)
    if recorder is not None or outcomes is not None or state is not None:
        built = Engine(
            features=features,
            ruleset=ruleset,
            recorder=recorder if recorder is not None else built.recorder,
            settings=config,
            model=built.model,
            outcomes=outcomes,
            state=state,
        )
    return built


def redis_state(url: str, prefix: str, client: RedisClient | None = None) -> RedisState:
    config = settings()
    features = FeatureState(load_catalog(config.features), config.utc_offset)
    return RedisState(features, client or connect(url), prefix=prefix)
