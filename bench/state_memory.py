"""Feature-state bytes per account as history grows: at 30, 60 and 89 days of a simulation.

Files every event of a simulated history into the feature state (no rules, no decisions:
`settled` filters then see all money) and, at each mark, sweeps as the engine does and
sizes the state object by object (`sys.getsizeof` of each container, int and string
reachable from the entities, the watched history and the phone links, each counted
once). Faster than tracemalloc around the whole replay (`bench memory`), and it can run
on another tree to compare before and after:

    PYTHONPATH=TREE/src python bench/state_memory.py EVENTS.jsonl [DAY ...]
    payguard simulate --users 2000 --days 90 --seed 3 -o EVENTS.jsonl   # the input
"""

import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from payguard.config import load_settings
from payguard.events import Event, EventDecoder
from payguard.features import FeatureState, load_catalog

DAY_MS = 86_400_000
MONEY = frozenset({"payment", "transfer", "withdrawal", "investment_buy"})
CONTEXT = frozenset({"register", "kyc_verify", "card_bind", "otp_send", "otp_verify"})


def deep_size(root: Any) -> int:
    """Bytes of `root` and everything it reaches through containers and Structs, once each."""
    seen: set[int] = set()
    stack, total = [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set):
            stack.extend(obj)
        elif hasattr(obj, "__struct_fields__"):
            stack.extend(getattr(obj, name) for name in obj.__struct_fields__)
    return total


def state_bytes(features: FeatureState) -> int:
    watch = features.watch
    parts = [features.entities, watch.since, watch.registered, features.clearings.times]
    parts += [getattr(watch, "last", None), getattr(features, "_phone_linked", None)]
    return deep_size([*parts, features._phone_users])


def _events(path: Path, features: FeatureState) -> Iterator[Event]:
    decode = EventDecoder(load_settings(env={"PAYGUARD_DEV": "1"}).tokenizer(features.knows))
    with path.open("rb") as lines:
        for line in lines:
            yield decode.decode(line)


def run(path: Path, days: list[int]) -> list[dict[str, float]]:
    """File `path` and measure at each of `days` after its first activity event."""
    features = FeatureState(load_catalog())
    money: dict[str, Event] = {}
    accounts: set[str] = set()
    marks, start, rows = sorted(days), None, []
    gc.disable()
    for event in _events(path, features):
        if start is None and event.type not in CONTEXT:
            start = event.ts
        while marks and start is not None and event.ts >= start + marks[0] * DAY_MS:
            rows.append(_measure(features, marks.pop(0), len(accounts)))
        referenced = money.get(event.ref_event_id) if event.ref_event_id else None
        features.update(event, referenced)
        if event.type in MONEY:
            money[event.event_id] = event
        if event.user_id is not None:
            accounts.add(event.user_id)
    gc.enable()
    return rows


def _measure(features: FeatureState, day: int, accounts: int) -> dict[str, float]:
    features.sweep()
    size = state_bytes(features)
    row = {
        "day": float(day),
        "accounts": float(accounts),
        "state_mib": round(size / 2**20, 1),
        "bytes_per_account": round(size / max(accounts, 1)),
        "timelines": float(features.entity_count()),
    }
    print(row, flush=True)
    return row


if __name__ == "__main__":
    run(Path(sys.argv[1]), [int(d) for d in sys.argv[2:]] or [30, 60, 89])
