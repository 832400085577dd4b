"""The people of the closed loop: what a customer or an attacker does with a decision.

Each actor answers two questions about one decided event: which challenge method they try
and how that ends (`answer`), and, once an operation is refused, what they try next
(`Customer.retry`, `Attacker.adapt`). The driver (`loop.driver`) turns the answers into
events. Everything draws from the loop's own `random.Random`, never the world's, so the
planned world stays byte-identical to the open-loop one.

What each actor can pass follows its position, not the rules: a customer passes the SMS
code and a callback (their own line), face if they enrolled it (most do), a hardware token
if they have one (few do) and an in-app confirmation on their own handset. An attacker
passes exactly what the open-loop backtest says they pass: the label's `can_pass`, else
`scenarios.ATTACKER_CAN_PASS` (a SIM holder passes SMS, a scam victim reads codes aloud, a
thief with the owner's photos passes face, a colluding cardholder passes everything). One
table, so the two loops cannot disagree about who passes what; waiting or retrying changes
nothing about it. Where the owner acts for the attacker (`scenarios.OWNER_ACTS`), the
attacker has no other channel and never reports the operation.
"""

import random
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from payguard.scenarios import owner_acts
from payguard.sim.population import User

ChallengeOutcome = Literal["passed", "failed", "abandoned"]

FACE_ENROLLED = 0.85
"""Share of customers who can do face verification (liveness) in the app."""
HARDWARE_TOKEN = 0.05
"""Share of customers who carry a hardware token (U-key)."""
ABANDON = 0.04
"""Chance that a customer who could pass gives up on a challenge anyway (busy, no light)."""
RETRY_AFTER_DECLINE = 0.5
"""Chance that a customer refused an operation tries it again later."""
CUSTOMER_TRIES = 2
"""Attempts a customer makes at one operation before giving up on it."""

Tactic = Literal["another_card", "smaller_amount", "another_channel", "wait_out"]
TACTICS: tuple[Tactic, ...] = ("another_card", "smaller_amount", "another_channel", "wait_out")


class Answer(NamedTuple):
    """How one challenge ends: the method tried (None: nothing tried) and the outcome."""

    method: str | None
    outcome: ChallengeOutcome


@dataclass(slots=True)
class Customer:
    """One legitimate customer's verification means, drawn once when first challenged."""

    user: User
    face: bool
    token: bool
    abandon: float = ABANDON

    @classmethod
    def draw(cls, user: User, rng: random.Random) -> "Customer":
        return cls(user, rng.random() < FACE_ENROLLED, rng.random() < HARDWARE_TOKEN)

    def owns_device(self, device_id: str | None) -> bool:
        """The customer's own handset or browser (a new handset counts once it is theirs)."""
        if device_id is None:
            return False
        user = self.user
        if user.new_device is not None and user.new_device.id == device_id:
            return True
        return any(d.id == device_id for d in user.devices)

    def can_pass(self, device_id: str | None) -> frozenset[str]:
        """Methods this customer passes on the device the event came from."""
        methods = {"sms_otp", "callback"}
        if self.face:
            methods.add("face")
        if self.token:
            methods.add("hardware_token")
        if self.owns_device(device_id):
            methods.add("in_app_confirm")
        return frozenset(methods)

    def answer(self, offered: list[str], device_id: str | None, rng: random.Random) -> Answer:
        """The first offered method the customer has, usually passed; else abandoned."""
        have = self.can_pass(device_id)
        method = next((m for m in offered if m in have), None)
        if method is None:
            return Answer(None, "abandoned")
        return Answer(method, "abandoned" if rng.random() < self.abandon else "passed")

    @staticmethod
    def retries(attempt: int, rng: random.Random) -> bool:
        """Whether a refused operation (attempt 1, 2, …) is tried once more later."""
        return attempt < CUSTOMER_TRIES and rng.random() < RETRY_AFTER_DECLINE


@dataclass(slots=True)
class Attacker:
    """One campaign's operator: what they pass and how long they keep trying.

    `patience` is how many refusals the campaign takes before it gives up (what is left of
    its plan is then never attempted); each refused money event gets one adapted retry."""

    campaign: str
    scenario: str
    variant: str
    patience: int
    declines: int = 0
    gave_up: bool = False
    tried_cards: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def draw(cls, campaign: str, scenario: str, variant: str, rng: random.Random) -> "Attacker":
        return cls(campaign, scenario, variant, patience=rng.randint(2, 8))

    @property
    def owner_acts(self) -> bool:
        return owner_acts(self.variant)

    def answer(self, offered: list[str], can: frozenset[str], rng: random.Random) -> Answer:
        """Pass the first offered method the position allows; otherwise try one and fail
        (a code that never arrives, a photo against liveness) or walk away."""
        method = next((m for m in offered if m in can), None)
        if method is not None:
            return Answer(method, "passed")
        if not offered:
            return Answer(None, "abandoned")
        if rng.random() < 0.5:
            return Answer(offered[0], "failed")
        return Answer(offered[0], "abandoned")

    def refused(self) -> bool:
        """Count one refusal; True when the attacker keeps going (and adapts)."""
        self.declines += 1
        if self.declines > self.patience:
            self.gave_up = True
        return not self.gave_up

    def adapt(self, options: set[Tactic], rng: random.Random) -> Tactic | None:
        """Pick a way round the refusal among those possible for this event."""
        choices = [t for t in TACTICS if t in options]
        if not choices:
            return None
        weights = [_TACTIC_WEIGHT[t] for t in choices]
        return rng.choices(choices, weights=weights)[0]


_TACTIC_WEIGHT: dict[Tactic, float] = {
    "another_card": 0.35,
    "smaller_amount": 0.3,
    "another_channel": 0.15,
    "wait_out": 0.2,
}


def smaller(fen: int, rng: random.Random) -> int:
    """A smaller amount under a round threshold the attacker guesses at (4,999 / 1,980)."""
    target = int(fen * rng.uniform(0.25, 0.6))
    unit = 1_000_00 if target >= 5_000_00 else 100_00 if target >= 500_00 else 10_00
    return max(1_00, (target // unit) * unit - rng.choice((1_00, 20_00, 1, 0)))
