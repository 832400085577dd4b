"""The attack campaigns and what each attacker can pass: the table the simulator plays
and the backtest judges by.

It lives on the ground floor, not in `sim/`, so that the backtest (which scores any
labelled events, simulated or not) reads it without importing the simulator.
"""

from payguard.types import CHALLENGE_METHODS

SCENARIOS: tuple[str, ...] = (
    "sms_forwarding",
    "credential_stuffing",
    "phone_theft_takeover",
    "merchant_credential_leak",
    "cash_out_collusion",
    "fake_customer_service",
)
"""The six documented attack campaigns, in the order they are generated."""

_EVERY_METHOD: frozenset[str] = frozenset(CHALLENGE_METHODS)

ATTACKER_CAN_PASS: dict[str, frozenset[str]] = {
    # The SMS-backup service delivers every OTP to the attacker; nothing else.
    "sms_forwarding": frozenset({"sms_otp"}),
    # Only when a victim reads the code to the "bank" caller; the backtest decides per case.
    "credential_stuffing": frozenset({"sms_otp"}),
    # The thief holds the unlocked phone and the SIM: codes, calls, push prompts, and a face
    # check passed with photos/video of the owner taken from the phone.
    "phone_theft_takeover": frozenset({"sms_otp", "callback", "in_app_confirm", "face"}),
    # Server-to-server debits with stolen API keys: no payer-side factor is reachable.
    "merchant_credential_leak": frozenset(),
    # The real cardholder colludes, so every step-up is passed by the rightful owner.
    "cash_out_collusion": _EVERY_METHOD,
    # The victim reads the SMS code to the fake agent; no other factor leaves the victim.
    "fake_customer_service": frozenset({"sms_otp"}),
}
"""Scenario -> challenge methods the attacker can pass, for the open-loop backtest and the
closed loop alike (a label's own `can_pass` overrides it per campaign: a thief with photos
of the owner passes face, one without does not, however long either waits)."""

READ_OUT_ONLY: dict[str, frozenset[str]] = {"credential_stuffing": frozenset({"sms_otp"})}
"""Methods in ATTACKER_CAN_PASS that the attacker passes only on events whose label line
carries `"victim_reads_otp": true` (the victim reads the code to the caller)."""


def default_can_pass(scenario: str) -> frozenset[str]:
    """What a scenario's attacker passes on a label line without `can_pass`.

    Unknown scenarios pass everything, so a challenge never counts as a stop for an attacker
    nobody described."""
    methods = ATTACKER_CAN_PASS.get(scenario, _EVERY_METHOD)
    return methods - READ_OUT_ONLY.get(scenario, frozenset())


OWNER_ACTS: tuple[str, ...] = (
    "cash_out_collusion/",
    "fake_customer_service/victim_own_device",
    "fake_customer_service/coached_loan_then_transfer",
    "fake_customer_service/screen_share_safe_account",
    "fake_customer_service/remote_app_compensation_orders",
)
"""Variants (or `scenario/` prefixes) in which the account owner is the attacker's hands: a
colluding cardholder (the merchant is the fraud), a coached victim on their own phone. They
pass what the owner passes (their label's methods), never report their own payments, and
have no other channel to retry on."""


def owner_acts(variant: str) -> bool:
    """Whether the account owner does this variant's steps (`OWNER_ACTS`)."""
    return variant.startswith(OWNER_ACTS)
