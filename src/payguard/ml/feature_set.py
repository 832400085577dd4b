"""Feature sets: which events get a model row, and the row's columns from a snapshot.

A feature set pairs a payguard feature catalog with a pure function of (point-in-time
snapshot, event) → numbers. The snapshot is exactly what the engine reads before it
decides an event (events that arrived earlier, windows (t − W, t]); the row function may
add what the event itself carries (its amount, its local hour) but nothing later. Both the
training set and serving use the same function, so there is no training/serving skew.
"""

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from payguard.events import FEEDBACK_TYPES, Event
from payguard.features import DEFAULT_CATALOG_PATH, Catalog, FeatureState, load_catalog
from payguard.types import DAY_MS, HOUR_MS, MINUTE_MS, MONEY_OUT_TYPES

FDH_CATALOG_PATH = Path(__file__).with_name("fdh_features.yaml")
NIGHT_LAST_HOUR = 6
"""The Handbook's TX_DURING_NIGHT: local hour <= 6."""

Row = Callable[[dict[str, Any], Event], list[float]]


@dataclass(frozen=True)
class FeatureSet:
    """A named recipe: catalog, the event types that get a row, and the row's columns."""

    name: str
    catalog_path: Path
    types: frozenset[str]
    columns: tuple[str, ...]
    row: Row
    needs: tuple[str, ...]
    """Catalog features the row function reads (the query plan)."""
    tracker: "Callable[[], Tracker] | None" = None
    """Extra point-in-time state the catalog language cannot express (its values are
    appended to the row, read before the event is filed, like every feature)."""

    def digest(self) -> str:
        """Changes whenever the catalog file or the columns change (cache keys)."""
        body = self.catalog_path.read_bytes() + "\n".join(self.columns).encode() + b"v2"
        return hashlib.sha256(body).hexdigest()

    def catalog(self) -> Catalog:
        return load_catalog(self.catalog_path)

    def state(self) -> FeatureState:
        return FeatureState(self.catalog())


class Tracker(Protocol):
    """State kept beside the feature state: `values` before `update`, event by event."""

    columns: tuple[str, ...]

    def values(self, event: Event) -> list[float]: ...

    def update(self, event: Event, referenced: Event | None) -> None: ...


class SettledStreak:
    """Per merchant: of its payments old enough that any fraud report on them has arrived
    (older than the feedback delay), how many of the most recent ones were reported.

    A compromised terminal (the Handbook's scenario 2) turns every payment fraudulent: its
    settled payments come back reported one after another, while a genuine terminal's
    rare fraud is followed by unreported ones. The catalog language has windows over
    report *arrival*; this needs the reports matched to the payments they cite."""

    columns: tuple[str, ...] = (
        "terminal_settled_fraud_streak",
        "terminal_settled_frauds_of_last_3",
    )

    def __init__(self, delay_ms: int) -> None:
        self.delay_ms = delay_ms
        self.pending: dict[str, deque[tuple[int, str]]] = {}
        self.reported: set[str] = set()
        self.recent: dict[str, tuple[int, tuple[bool, ...]]] = {}
        """merchant → (streak of reported settled payments, the last three outcomes)."""

    def values(self, event: Event) -> list[float]:
        merchant = event.merchant.id if event.merchant is not None else None
        if merchant is None:
            return [0.0, 0.0]
        streak, last = self._settle(merchant, event.ts)
        return [float(streak), float(sum(last))]

    def _settle(self, merchant: str, t: int) -> tuple[int, tuple[bool, ...]]:
        streak, last = self.recent.get(merchant, (0, ()))
        queue = self.pending.get(merchant)
        while queue and queue[0][0] <= t - self.delay_ms:
            _, payment = queue.popleft()
            fraud = payment in self.reported
            self.reported.discard(payment)
            streak = streak + 1 if fraud else 0
            last = (*last[-2:], fraud)
        self.recent[merchant] = (streak, last)
        return streak, last

    def update(self, event: Event, referenced: Event | None) -> None:
        if event.type == "payment" and event.merchant is not None:
            queue = self.pending.setdefault(event.merchant.id, deque())
            queue.append((event.ts, event.event_id))
        elif referenced is not None and event.type in FEEDBACK_TYPES:
            self.reported.add(referenced.event_id)


def _local(ts: int, offset_hours: int) -> tuple[int, int]:
    """(hour, weekday with Monday = 0) of epoch ms at a fixed UTC offset."""
    local = ts + offset_hours * HOUR_MS
    return (local % DAY_MS) // HOUR_MS, (local // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday


# -- the Handbook's 15 features (Chapter 3.3) and payguard's extras ----------------------

HANDBOOK_COLUMNS: tuple[str, ...] = (
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    "CUSTOMER_ID_NB_TX_1DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
    "CUSTOMER_ID_NB_TX_7DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW",
    "CUSTOMER_ID_NB_TX_30DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
    "TERMINAL_ID_NB_TX_1DAY_WINDOW",
    "TERMINAL_ID_RISK_1DAY_WINDOW",
    "TERMINAL_ID_NB_TX_7DAY_WINDOW",
    "TERMINAL_ID_RISK_7DAY_WINDOW",
    "TERMINAL_ID_NB_TX_30DAY_WINDOW",
    "TERMINAL_ID_RISK_30DAY_WINDOW",
)
EXTRA_COLUMNS: tuple[str, ...] = (
    "amount_to_avg_7d",
    "amount_to_avg_30d",
    "amount_to_avg_90d",
    "avg_1d_to_avg_90d",
    "customer_nb_tx_90d",
    "terminal_nb_tx_undelayed_1d",
    "terminal_reports_1d",
    "terminal_reports_7d",
    "terminal_reports_30d",
    "terminal_minutes_since_report",
    "terminal_minutes_since_first_report",
    "terminal_risk_2d",
    "terminal_risk_3d",
    "terminal_risk_14d",
)
DELAY_WINDOW = "7d"
"""The Handbook's feedback delay: terminal windows end 7 days before the payment."""


def handbook_values(snap: dict[str, Any], event: Event, offset_hours: int) -> list[float]:
    """The Handbook's 15 features from payguard's snapshot, definition for definition.

    Customer windows include the current payment (payguard's do not: + 1, + amount);
    terminal windows are delayed by 7 days (count over 7d + W minus count over 7d), and
    risk is reports received in the last W over that count (0 when there is none)."""
    amount = event.amount or 0
    hour, weekday = _local(event.ts, offset_hours)
    out: list[float] = [
        amount / 100,
        float(weekday >= 5),
        float(hour <= NIGHT_LAST_HOUR),
    ]
    for window in ("1d", "7d", "30d"):
        n = snap[f"count_payment_by_user_{window}"] + 1
        total = snap[f"sum_amount_payment_by_user_{window}"] + amount
        out += [float(n), total / n / 100]
    delayed = snap[f"count_payment_by_merchant_{DELAY_WINDOW}"]
    for window, span in (("1d", "8d"), ("7d", "14d"), ("30d", "37d")):
        n = snap[f"count_payment_by_merchant_{span}"] - delayed
        frauds = snap[f"count_fraud_label_by_merchant_{window}"]
        out += [float(n), frauds / n if n else 0.0]
    return out


def extra_values(snap: dict[str, Any], event: Event) -> list[float]:
    """What payguard adds: the amount against the customer's own history (the Handbook's
    compromised-card scenario multiplies amounts by 5), and raw report counts."""
    amount = event.amount or 0
    out: list[float] = []
    for window in ("7d", "30d", "90d"):
        n = snap[f"count_payment_by_user_{window}"]
        total = snap[f"sum_amount_payment_by_user_{window}"]
        out.append(amount * n / total if total else -1.0)
    n1, s1 = snap["count_payment_by_user_1d"], snap["sum_amount_payment_by_user_1d"]
    n90, s90 = snap["count_payment_by_user_90d"], snap["sum_amount_payment_by_user_90d"]
    out.append(((s1 + amount) / (n1 + 1)) / (s90 / n90) if s90 else -1.0)
    since = snap["minutes_since_fraud_label_by_merchant_30d"]
    out += [
        float(n90),
        float(snap["count_payment_by_merchant_1d"]),
        float(snap["count_fraud_label_by_merchant_1d"]),
        float(snap["count_fraud_label_by_merchant_7d"]),
        float(snap["count_fraud_label_by_merchant_30d"]),
        float(min(since, 30 * DAY_MS // MINUTE_MS)),
        float(snap["age_fraud_label_by_merchant"] or -1),
    ]
    delayed = snap[f"count_payment_by_merchant_{DELAY_WINDOW}"]
    for window, span in (("2d", "9d"), ("3d", "10d"), ("14d", "21d")):
        n = snap[f"count_payment_by_merchant_{span}"] - delayed
        out.append(snap[f"count_fraud_label_by_merchant_{window}"] / n if n else -1.0)
    return out


def fdh_feature_set(offset_hours: int = 8, extras: bool = True) -> FeatureSet:
    """The Handbook's features (and, with `extras`, payguard's) on `fdh_features.yaml`."""

    def row(snap: dict[str, Any], event: Event) -> list[float]:
        values = handbook_values(snap, event, offset_hours)
        return values + extra_values(snap, event) if extras else values

    catalog = load_catalog(FDH_CATALOG_PATH)
    needs = tuple(sorted({spec.name(w) for spec in catalog.features for w in spec.windows}))
    return FeatureSet(
        name=f"fdh{'+extras' if extras else ''}@{offset_hours:+d}h",
        catalog_path=FDH_CATALOG_PATH,
        types=frozenset({"payment"}),
        columns=HANDBOOK_COLUMNS + (EXTRA_COLUMNS + SettledStreak.columns if extras else ()),
        row=row,
        needs=needs,
        tracker=(lambda: SettledStreak(7 * DAY_MS)) if extras else None,
    )


def default_feature_set(offset_hours: int = 8) -> FeatureSet:
    """Every feature of payguard's default catalog, for money leaving an account."""
    catalog = load_catalog(DEFAULT_CATALOG_PATH)
    names = tuple(sorted(FeatureState(catalog).layout))

    def row(snap: dict[str, Any], event: Event) -> list[float]:
        hour, weekday = _local(event.ts, offset_hours)
        values = [float(snap[name]) for name in names]
        return [*values, (event.amount or 0) / 100, float(hour), float(weekday)]

    return FeatureSet(
        name=f"default@{offset_hours:+d}h",
        catalog_path=DEFAULT_CATALOG_PATH,
        types=MONEY_OUT_TYPES,
        columns=(*names, "amount", "local_hour", "local_weekday"),
        row=row,
        needs=names,
    )


def feature_set(name: str) -> FeatureSet:
    """A feature set by the name an artifact records (`fdh+extras@+8h`, `default@+8h`)."""
    base, _, offset = name.partition("@")
    hours = int(offset.removesuffix("h")) if offset else 8
    if base == "fdh+extras":
        return fdh_feature_set(hours, extras=True)
    if base == "fdh":
        return fdh_feature_set(hours, extras=False)
    if base == "default":
        return default_feature_set(hours)
    raise ValueError(f"unknown feature set {name!r} (fdh, fdh+extras, default)")
