"""The analyst queue of the closed loop: every review is looked at by a person, later.

A bank's fraud desk works in shifts (here 08:00–22:00 local time, every day): a review
opened at night waits for the morning shift, one opened in the day waits in the queue for
15 minutes to 3 working hours. The analyst then posts a `label` (source `analyst`) on the
reviewed event: `fraud` keeps the account stopped (it counts as a fraud report), `not_fraud`
releases the operation and the follow-on rules (`policy.outcomes.released_by_label`).
Analysts are right most of the time, not always: they release `MISS` of the attacks they
look at (the story checked out, the victim vouched for the payment) and confirm `FALSE_ALARM`
of honest operations as fraud. One actor's stops of one account within a day are one case:
one verdict for all of them (the driver keeps the cases).

The rates are the loop's assumptions, not measurements of any bank; they are drawn from
the loop's own `random.Random`, so a seed gives the same verdicts at the same times.
"""

import random
from dataclasses import dataclass
from typing import Literal

from payguard.sim.world import HOUR, MINUTE

Verdict = Literal["fraud", "not_fraud"]

SHIFT_START_HOUR = 8
"""Local hour the fraud desk opens (inclusive)."""
SHIFT_END_HOUR = 22
"""Local hour it closes (exclusive)."""
QUEUE_MINUTES = (15, 180)
"""Working minutes a review waits in the queue before an analyst resolves it."""
MISS = 0.05
"""Share of attack operations an analyst releases as `not_fraud`."""
FALSE_ALARM = 0.02
"""Share of honest operations an analyst confirms as `fraud`."""
CASE_SECONDS = 24 * HOUR
"""One actor's stops of one account within this long of the first are one case with one
verdict (the analyst looks at the case, not each operation on its own)."""


@dataclass(frozen=True, slots=True)
class Analyst:
    """The fraud desk: when a review opened at `ts` is resolved, and how."""

    utc_offset_hours: int = 8
    miss: float = MISS
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

    def verdict(self, attack: bool, rng: random.Random) -> Verdict:
        """The analyst's label: right except for `miss` / `false_alarm` of the cases."""
        if attack:
            return "not_fraud" if rng.random() < self.miss else "fraud"
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
