"""The analyst queue of the closed loop: every review is looked at by a person, later.

A bank's fraud desk works in shifts (here 08:00–22:00 local time, every day): a review
opened at night waits for the morning shift, one opened in the day waits in the queue for
15 minutes to 3 working hours. The analyst then posts a `label` (source `analyst`) on the
reviewed event: `fraud` keeps the account stopped (it counts as a fraud report), `not_fraud`
releases the operation and the follow-on rules (`policy.outcomes.released_by_label`).

The desk checks a case the way a bank's desk does: it calls the account's registered line
and asks whether the operation was theirs. A wrong release needs someone on that line who
vouches for it: the attacker holding the line (a thief with the SIM), or an owner who is the
attacker's hands or is being coached (a colluding cardholder, a scam victim). Then the story
can check out and the analyst releases `MISS` of those cases. Where the owner answers and was
not in on it (a stuffed password, a forwarded SMS, a leaked merchant key), the owner says "not
me": only a slip lets that go (`MISS_OWNER_DENIES`). Honest operations are confirmed as fraud
`FALSE_ALARM` of the time. One actor's stops of one account are one case while the case is
open: stops queued before its verdict is posted share it (each further attack stop in a
case about to be released must check out too: one more draw of the release); a stop after
the verdict is new evidence on the case page and is looked at again (the driver keeps the
cases). Until
2026-12-06 every attack case was released 5 % of the time whoever answered the call, and a
release covered every stop of the account for a day, including the attacker's retries that
came after it: one released stuffing case let 66 thousand CNY go on held-out seed 101.

The rates are the loop's assumptions, not measurements of any bank; they are drawn from
the loop's own `random.Random`, so a seed gives the same verdicts at the same times.
"""

import random
from dataclasses import dataclass
from typing import Literal

from payguard.scenarios import owner_acts
from payguard.sim.world import HOUR, MINUTE

Verdict = Literal["fraud", "not_fraud"]

SHIFT_START_HOUR = 8
"""Local hour the fraud desk opens (inclusive)."""
SHIFT_END_HOUR = 22
"""Local hour it closes (exclusive)."""
QUEUE_MINUTES = (15, 180)
"""Working minutes a review waits in the queue before an analyst resolves it."""
MISS = 0.05
"""Share of attack cases an analyst releases as `not_fraud` when whoever answers the
registered line vouches for the operation (the attacker holds the line, or the owner is the
attacker's hands or coached)."""
MISS_OWNER_DENIES = 0.01
"""Share of attack cases released although the owner, reached on their line, was not in on
it and says it was not them: a slip of the desk, not a story that checked out."""
FALSE_ALARM = 0.02
"""Share of honest operations an analyst confirms as `fraud`."""
CASE_SECONDS = 24 * HOUR
"""One actor's stops of one account within this long of the first, and before its verdict
is posted, are one case with one verdict (the analyst looks at the case, not each operation
on its own; a stop after the verdict is looked at again)."""


COACHED: tuple[str, ...] = ("fake_customer_service",)
"""Scenarios whose victim is under the caller's instructions while it runs: called by the
bank, they say the operation was theirs (the scam tells them to)."""


def line_vouches(scenario: str, variant: str, can_pass: frozenset[str]) -> bool:
    """Whether the person who answers the bank's call on the account's registered line
    vouches for an attack operation: the attacker holds the line (passes `callback`), the
    owner is the attacker's hands (`scenarios.OWNER_ACTS`) or a coached victim (`COACHED`).
    Otherwise the owner answers and was not in on it."""
    return "callback" in can_pass or owner_acts(variant) or scenario in COACHED


@dataclass(frozen=True, slots=True)
class Analyst:
    """The fraud desk: when a review opened at `ts` is resolved, and how."""

    utc_offset_hours: int = 8
    miss: float = MISS
    miss_owner_denies: float = MISS_OWNER_DENIES
    false_alarm: float = FALSE_ALARM

    def resolved_at(self, ts: int, rng: random.Random) -> int:
        """When a review opened at `ts` (epoch s) is resolved: the queue's latency counted
        in working time, from the first working moment at or after `ts`."""
        wait = rng.randint(QUEUE_MINUTES[0] * MINUTE, QUEUE_MINUTES[1] * MINUTE)
        at = self.next_working(ts)
        while True:
            left = self._shift_end(at) - at
            if wait < left:
                return at + wait
            wait -= left
            at = self.next_working(at + left)

    def verdict(self, attack: bool, rng: random.Random, vouched: bool = True) -> Verdict:
        """The analyst's label: right except for `false_alarm` of honest cases and, of attack
        cases, `miss` where the registered line vouches (`vouched`), `miss_owner_denies`
        where the owner answers and denies it."""
        if attack:
            miss = self.miss if vouched else self.miss_owner_denies
            return "not_fraud" if rng.random() < miss else "fraud"
        return "fraud" if rng.random() < self.false_alarm else "not_fraud"

    def next_working(self, ts: int) -> int:
        """`ts` if the desk is open then, else the start of the next shift."""
        hour = self._local_hour(ts)
        if SHIFT_START_HOUR <= hour < SHIFT_END_HOUR:
            return ts
        day_start = ts - self._local_seconds(ts)
        if hour >= SHIFT_END_HOUR:
            day_start += 24 * HOUR
        return day_start + SHIFT_START_HOUR * HOUR

    def _shift_end(self, ts: int) -> int:
        return ts - self._local_seconds(ts) + SHIFT_END_HOUR * HOUR

    def _local_seconds(self, ts: int) -> int:
        return (ts + self.utc_offset_hours * HOUR) % (24 * HOUR)

    def _local_hour(self, ts: int) -> int:
        return self._local_seconds(ts) // HOUR
