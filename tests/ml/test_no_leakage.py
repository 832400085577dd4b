"""Training rows hold only what the engine saw at decision time.

A row is the feature snapshot taken before its event is filed. Anything that arrives
later — another payment, a fraud report on an earlier payment, a label — must change
nothing in it; a report counts only for decisions after it arrived.
"""

from typing import Any

import msgspec
import numpy as np

from payguard.events import Event, EventDecoder, Tokenizer
from payguard.ml.feature_set import fdh_feature_set
from payguard.ml.rows import NO_LABEL, Rows, rows_from

DECODE = EventDecoder(Tokenizer(b"0123456789abcdef")).decode
DAY = 86_400_000
T0 = 1_530_000_000_000  # 2018-06-26


def _payment(n: int, ts: int, user: str, merchant: str, amount: str) -> Event:
    body: dict[str, Any] = {
        "event_id": f"p{n}",
        "type": "payment",
        "ts": ts,
        "user_id": user,
        "card": {"token": f"card-{user}"},
        "amount": amount,
        "merchant": {"id": merchant},
    }
    return DECODE(msgspec.json.encode(body))


def _report(n: int, ts: int, ref: str, user: str) -> Event:
    body = {
        "event_id": f"r{n}",
        "type": "fraud_report",
        "ts": ts,
        "user_id": user,
        "ref_event_id": ref,
    }
    return DECODE(msgspec.json.encode(body))


def _rows(events: list[Event]) -> Rows:
    wanted = {e.ref_event_id for e in events if e.ref_event_id}
    return rows_from(events, fdh_feature_set(), {w for w in wanted if w})


BASE = [
    _payment(1, T0, "u1", "m1", "30.00"),
    _payment(2, T0 + 1 * DAY, "u2", "m1", "40.00"),
    _payment(3, T0 + 8 * DAY, "u1", "m1", "500.00"),
    _payment(4, T0 + 9 * DAY, "u3", "m1", "20.00"),
]


def test_later_events_and_labels_change_no_earlier_row() -> None:
    before = _rows(BASE)
    later = [
        _payment(5, T0 + 9 * DAY + 1, "u1", "m1", "999.00"),
        _report(1, T0 + 9 * DAY + 2, "p1", "u1"),  # p1 reported, after p4 was decided
        _payment(6, T0 + 10 * DAY, "u2", "m1", "10.00"),
    ]
    after = _rows(BASE + later)
    assert np.array_equal(after.x[: len(BASE)], before.x)
    assert list(after.event_id[: len(BASE)]) == list(before.event_id)
    assert before.label_ts[0] == NO_LABEL  # the label did not exist yet
    assert after.label_ts[0] == T0 + 9 * DAY + 2  # …and is dated when it arrived
    reports_1d = after.columns.index("terminal_reports_1d")
    assert after.x[len(BASE) - 1, reports_1d] == 0  # p4 decided before the report
    assert after.x[len(BASE) + 1, reports_1d] == 1  # p6 (row after p5) decided after it


def test_labels_known_at_respects_arrival() -> None:
    rows = _rows([*BASE, _report(1, T0 + 9 * DAY + 2, "p1", "u1")])
    assert rows.labels_known_at(T0 + 9 * DAY + 1).tolist() == [0, 0, 0, 0]
    assert rows.labels_known_at(T0 + 9 * DAY + 2).tolist() == [1, 0, 0, 0]


def test_current_payment_counts_in_customer_windows_only_once() -> None:
    rows = _rows(BASE)
    col = {c: i for i, c in enumerate(rows.columns)}
    third = rows.x[2]  # u1's second payment, 8 days after its first
    assert third[col["CUSTOMER_ID_NB_TX_1DAY_WINDOW"]] == 1
    assert third[col["CUSTOMER_ID_NB_TX_30DAY_WINDOW"]] == 2
    assert third[col["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"]] == np.float32(265.0)
    # terminal m1, delayed window (t-8d, t-7d]: p2 (t - 7d exactly) is in, p1 (t - 8d) is not
    assert third[col["TERMINAL_ID_NB_TX_1DAY_WINDOW"]] == 1


def test_settled_streak_counts_reported_payments_once_the_delay_has_passed() -> None:
    events = [
        _payment(1, T0, "u1", "m1", "10.00"),
        _payment(2, T0 + DAY, "u2", "m1", "10.00"),
        _report(1, T0 + 7 * DAY, "p1", "u1"),
        _payment(3, T0 + 7 * DAY, "u3", "m1", "10.00"),  # p1 settled (reported), p2 not yet
        _report(2, T0 + 8 * DAY, "p2", "u2"),
        _payment(4, T0 + 8 * DAY + 1, "u3", "m1", "10.00"),  # p1, p2 both reported
        _payment(5, T0 + 14 * DAY + 1, "u1", "m1", "10.00"),  # p3 settled unreported
    ]
    rows = _rows(events)
    streak = rows.columns.index("terminal_settled_fraud_streak")
    last3 = rows.columns.index("terminal_settled_frauds_of_last_3")
    assert rows.x[:, streak].tolist() == [0, 0, 1, 2, 0]
    assert rows.x[:, last3].tolist() == [0, 0, 1, 2, 2]
