"""The "follow-on after a stop" section of rules/default.yaml, on hand-made sequences
decided by a real in-memory engine with the default catalog and ruleset: after the engine
reviews or blocks something, the stopped device, a new device on the stopped account and a
stopped identity are asked for what only the owner passes; the owner's own long-used
device is asked nothing for small amounts, large ones wait; a face passed after the stop
makes the money wait for the analyst, and confirmed fraud sends it to a person. The
merchant of a stopped cash-out and the payee of a stopped transfer are remembered for the
week (`policy.follow_on`), a busy shop with one stop among many sales is not."""

from typing import Any

import pytest
from default_world import DAY0, DAY_MS, DefaultWorld

from payguard.decision import Decision
from payguard.events import Card, Merchant, Payee

TODAY = 15
FOLLOW_ON = {
    "after_stop_device",
    "after_stop_account",
    "after_stop_big_money",
    "after_stop_open_review",
    "after_stop_vouched",
    "after_stop_confirmed",
    "after_stop_merchant",
    "after_stop_payee",
    "after_stop_same_counterparty",
    "after_stop_identity_card",
}
SHOP = Merchant(id="m-shop", category="other")


class World(DefaultWorld):
    """Customers with two weeks of lunch payments from their own phone."""

    def send(self, type: str, ts: int, **fields: Any) -> tuple[str, Decision]:
        return self.decide(type, ts, **fields)

    def customer(self, user: str) -> None:
        self.send("register", DAY0 - 400 * DAY_MS, user_id=user, device_id=f"phone-{user}")
        for day in range(TODAY):
            self.pay(user, self.at(day, 12.5))

    def pay(self, user: str, ts: int, device: str | None = None, fen: int = 5_000) -> Decision:
        return self.send(
            "payment",
            ts,
            user_id=user,
            device_id=device or f"phone-{user}",
            ip="10.1.1.5",
            amount=fen,
            merchant=Merchant(id="m-canteen", category="food"),
        )[1]

    def stop(self, user: str, ts: int, device: str) -> str:
        """A transfer the engine sends to review: a loan, then a large amount unlike the
        customer's own to a new payee (`loan_then_drain`)."""
        self.send("loan_apply", ts - 600_000, user_id=user, device_id=device, amount=900_000)
        event_id, decision = self.send(
            "transfer", ts, user_id=user, device_id=device, amount=900_000,
            payee=Payee(id="payee-new", card=Card(token="pan_new")),
        )  # fmt: skip
        assert decision.action in ("review", "block"), decision.reasons
        return event_id

    def shop_sales(self, users: tuple[str, ...], shop: Merchant = SHOP) -> None:
        """Two weeks of small debit-card sales of `shop` to `users`, every afternoon."""
        for day in range(TODAY):
            for n, user in enumerate(users):
                self.send(
                    "payment", self.at(day, 15 + n / 60), user_id=user,
                    device_id=f"phone-{user}", ip="10.1.1.5", amount=8_000, merchant=shop,
                    card=Card(token=f"pan-{user}", kind="debit"),
                )  # fmt: skip

    def credit(self, user: str, ts: int, fen: int, shop: Merchant = SHOP) -> Decision:
        """A credit-card payment of `user` to `shop` from their own phone."""
        return self.send(
            "payment", ts, user_id=user, device_id=f"phone-{user}", ip="10.1.1.5",
            amount=fen, merchant=shop, card=Card(token=f"cc-{user}", kind="credit"),
        )[1]  # fmt: skip

    def transfer(self, user: str, ts: int, fen: int, payee: str = "payee-new") -> Decision:
        return self.send(
            "transfer", ts, user_id=user, device_id=f"phone-{user}", amount=fen,
            payee=Payee(id=payee, card=Card(token=f"pan_{payee}")),
        )[1]  # fmt: skip

    def result(
        self, ref: str, ts: int, user: str, device: str, outcome: str = "passed",
        method: str = "face",
    ) -> None:  # fmt: skip
        self.send(
            "challenge_result", ts, user_id=user, device_id=device, ref_event_id=ref,
            method=method, outcome=outcome,
        )  # fmt: skip


def follow_on(decision: Decision) -> set[str]:
    return {r.rule for r in decision.reasons} & FOLLOW_ON


@pytest.fixture
def world() -> World:
    w = World()
    for user in ("u1", "u2"):
        w.customer(user)
    return w


def test_the_stopped_device_is_asked_for_face_on_any_account(world: World) -> None:
    world.stop("u1", world.at(TODAY, 10), "dev-x")
    decision = world.pay("u2", world.at(TODAY, 11), device="dev-x")
    assert "after_stop_device" in follow_on(decision)
    hit = next(h for h in decision.reasons if h.rule == "after_stop_device")
    assert "face or token" in hit.text
    assert decision.action in ("challenge", "review")  # the device's own history may add more


def test_a_new_device_on_the_stopped_account_is_asked_the_owners_own_phone_is_not(
    world: World,
) -> None:
    world.stop("u1", world.at(TODAY, 10), "dev-x")
    elsewhere = world.pay("u1", world.at(TODAY, 11), device="dev-y")
    assert "after_stop_account" in follow_on(elsewhere)
    own = world.pay("u1", world.at(TODAY, 12.5))
    assert follow_on(own) == set() and own.action == "allow"


def test_the_follow_on_ends_after_the_user_and_device_horizon(world: World) -> None:
    world.stop("u1", world.at(TODAY, 10), "dev-x")
    assert follow_on(world.pay("u2", world.at(TODAY, 20), device="dev-x"))
    assert not follow_on(world.pay("u2", world.at(TODAY + 1, 11), device="dev-x"))


def test_a_face_passed_after_the_stop_makes_the_money_wait(world: World) -> None:
    world.stop("u1", world.at(TODAY, 10), "phone-u1")
    asked, decision = world.send(
        "card_bind", world.at(TODAY, 10.2), user_id="u1", device_id="dev-new",
        card=Card(token="pan-u1-new"),
    )  # fmt: skip
    assert decision.action == "challenge" and "after_stop_account" in follow_on(decision)
    world.result(asked, world.at(TODAY, 10.21), "u1", "dev-new")
    held = world.pay("u1", world.at(TODAY, 10.5))
    assert held.action == "hold" and "after_stop_vouched" in follow_on(held)


def test_confirmed_fraud_after_the_stop_sends_vouched_money_to_a_person(world: World) -> None:
    stopped = world.stop("u1", world.at(TODAY, 10), "phone-u1")
    asked, _ = world.send(
        "card_bind", world.at(TODAY, 10.2), user_id="u1", device_id="dev-new",
        card=Card(token="pan-u1-new"),
    )  # fmt: skip
    world.result(asked, world.at(TODAY, 10.21), "u1", "dev-new")
    world.send(
        "label", world.at(TODAY, 11), user_id="u1", ref_event_id=stopped, label="fraud",
        source="analyst",
    )  # fmt: skip
    later = world.pay("u1", world.at(TODAY + 4, 12.5))  # past the user horizon, within 7 d
    assert later.action == "review" and "after_stop_confirmed" in follow_on(later)


def test_without_a_stop_a_passed_face_changes_nothing(world: World) -> None:
    asked, decision = world.send(
        "payment", world.at(TODAY, 10), user_id="u1", device_id="dev-new", amount=5_000,
        merchant=Merchant(id="m-canteen", category="food"),
    )  # fmt: skip
    if decision.action == "challenge":
        world.result(asked, world.at(TODAY, 10.01), "u1", "dev-new")
    assert follow_on(world.pay("u1", world.at(TODAY, 12.5))) == set()


def test_the_stopped_accounts_own_device_is_not_asked_again(world: World) -> None:
    """A face challenge there stops no thief who passes face and asks the honest customer
    again; a face passed elsewhere after the stop is what makes the money wait."""
    world.stop("u1", world.at(TODAY, 10), "phone-u1")
    assert "after_stop_device" not in follow_on(world.pay("u1", world.at(TODAY, 12.5)))
    assert "after_stop_device" in follow_on(
        world.pay("u2", world.at(TODAY, 12.5), device="phone-u1")
    )


def test_large_money_out_of_a_stopped_account_waits_on_any_device(world: World) -> None:
    """A thief on the owner's unlocked handset goes on after the stop: a large amount
    waits; right after the stop (`open_review_minutes`) so does lunch from the stopped
    device (refused, an attacker pays smaller at once); an hour on lunch goes on; a day
    later (`follow_on.user`) the large amount does too."""
    world.stop("u1", world.at(TODAY, 10), "phone-u1")
    large = world.pay("u1", world.at(TODAY, 10.2), fen=300_000)
    assert "after_stop_big_money" in follow_on(large)  # (its size may send it to review too)
    assert large.action in ("hold", "review")
    lunch = world.pay("u1", world.at(TODAY, 10.5))
    assert follow_on(lunch) == {"after_stop_open_review"} and lunch.action == "hold"
    assert follow_on(world.pay("u2", world.at(TODAY, 10.5))) == set()  # another account
    assert follow_on(world.pay("u1", world.at(TODAY, 11.5))) == set()
    later = world.pay("u1", world.at(TODAY + 1, 14), fen=300_000)  # a day after the last stop
    assert "after_stop_big_money" not in follow_on(later)


def test_an_analysts_release_lets_the_stopped_devices_money_go(world: World) -> None:
    stopped = world.stop("u1", world.at(TODAY, 10), "phone-u1")
    assert world.pay("u1", world.at(TODAY, 10.2)).action == "hold"
    world.send(
        "label", world.at(TODAY, 10.3), user_id="u1", ref_event_id=stopped, label="not_fraud",
        source="analyst",
    )  # fmt: skip
    released = world.pay("u1", world.at(TODAY, 10.4))
    assert follow_on(released) == set() and released.action == "allow"


def test_a_stopped_cash_out_merchant_has_large_credit_payments_looked_at_for_the_week(
    world: World,
) -> None:
    """The shop's cash-out payment is stopped; two days later another cardholder's large
    credit payment to it goes to a person, its small sales do not, and after the week
    (`follow_on.merchant`) the memory ends."""
    world.customer("u3")
    world.shop_sales(("u1", "u2", "u3"))
    assert world.credit("u1", world.at(TODAY, 10), 980_000).action == "review"
    before = world.credit("u2", world.at(TODAY - 1, 16), 450_000)
    assert "after_stop_merchant" not in follow_on(before)
    after = world.credit("u2", world.at(TODAY + 2, 10), 450_000)
    assert after.action == "review" and "after_stop_merchant" in follow_on(after)
    small = world.credit("u3", world.at(TODAY + 2, 11), 8_000)
    assert "after_stop_merchant" not in follow_on(small)
    week = world.credit("u3", world.at(TODAY + 9, 11), 450_000)
    assert "after_stop_merchant" not in follow_on(week)


def _young_shop_with_small_sales(world: World) -> Merchant:
    """A shop three days old where u2 and u3 each paid 80 CNY by debit card every day."""
    world.customer("u3")
    young = Merchant(id="m-young", category="other")
    for day in range(TODAY - 3, TODAY):
        for user in ("u2", "u3"):
            world.send(
                "payment", world.at(day, 15), user_id=user, device_id=f"phone-{user}",
                ip="10.1.1.5", amount=8_000, merchant=young,
                card=Card(token=f"pan-{user}", kind="debit"),
            )  # fmt: skip
    return young


def test_the_stopped_cash_out_does_not_raise_the_shops_own_bar(world: World) -> None:
    """A young shop with a handful of small sales: the stopped 9,800 CNY payment is most of
    its month, so its p90 over every payment is that payment; over the payments that went
    through it is still the shop's own small ticket, and the next cardholder is looked at."""
    young = _young_shop_with_small_sales(world)
    assert world.credit("u1", world.at(TODAY, 10), 980_000, young).action == "review"
    after = world.credit("u2", world.at(TODAY + 1, 11), 980_000, young)
    assert "after_stop_merchant" in follow_on(after)


def test_big_tickets_that_settle_after_the_stop_do_not_raise_the_shops_own_bar(
    world: World,
) -> None:
    """The demo month's cash-out (`young_merchant_weeks`): after its first stop, a big
    ticket on another card settles anyway (a debit card `after_stop_merchant` does not ask
    about, held or passed by its own cardholder). Against every payment that went through,
    that ticket was the young shop's new p90 and its next cardholders went on; against the
    shop's own trade from before the stop it is still the small ticket, and they are looked
    at."""
    young = _young_shop_with_small_sales(world)
    assert world.credit("u1", world.at(TODAY, 10), 980_000, young).action == "review"
    _, settled = world.send(
        "payment", world.at(TODAY, 11), user_id="u3", device_id="phone-u3", ip="10.1.1.5",
        amount=490_000, merchant=young, card=Card(token="pan-u3", kind="debit"),
    )  # fmt: skip
    assert settled.action not in ("review", "block"), settled.reasons
    after = world.credit("u2", world.at(TODAY, 12), 980_000, young)
    assert after.action == "review" and "after_stop_merchant" in follow_on(after)


def test_a_busy_shop_with_one_stop_among_many_sales_is_not_asked(world: World) -> None:
    users = tuple(f"b{n}" for n in range(5))
    for user in users:
        world.customer(user)
    busy = Merchant(id="m-busy", category="other")
    world.shop_sales(users, busy)  # 75 sales in the month: one stop is under one in fifty
    assert world.credit("b0", world.at(TODAY, 10), 980_000, busy).action == "review"
    after = world.credit("b1", world.at(TODAY + 2, 10), 450_000, busy)
    assert "after_stop_merchant" not in follow_on(after)


def test_the_stopped_transfer_tried_again_smaller_or_a_day_later_waits(world: World) -> None:
    """The same account sending to the payee it was stopped sending to: under the large
    amount of `after_stop_payee` and past the account's own day it still waits; the
    account's other payees and its usual shop are not asked."""
    world.stop("u1", world.at(TODAY, 10), "phone-u1")
    smaller = world.transfer("u1", world.at(TODAY, 10.5), 150_000)
    assert smaller.action in ("hold", "review")  # (the loan before it may add a review)
    assert "after_stop_same_counterparty" in follow_on(smaller)
    later = world.transfer("u1", world.at(TODAY + 1, 16), 150_000)
    assert "after_stop_same_counterparty" in follow_on(later)
    elsewhere = world.transfer("u1", world.at(TODAY + 1, 17), 5_000, payee="payee-mum")
    assert "after_stop_same_counterparty" not in follow_on(elsewhere)
    lunch = world.pay("u1", world.at(TODAY + 1, 12.5))
    assert follow_on(lunch) == set() and lunch.action == "allow"


def test_a_large_amount_sent_again_to_a_payee_of_weeks_a_day_later_waits(world: World) -> None:
    """The thief on the owner's handset re-sends the stopped operation to the owner's own
    counterparty 24-30 h later (`wait_out`), when `after_stop_big_money`'s day has run out:
    a large amount to the payee the account was stopped paying waits for the week even when
    the account has paid it for weeks; its small transfers there go on."""
    for day in (0, 5, 10):
        world.transfer("u1", world.at(day, 18), 5_000, payee="payee-mum")
    for n in range(3):  # over the day's limit; the step-up failed twice, then a person looks
        ts = world.at(TODAY, 10 + n / 5)
        event_id, stopped = world.send(
            "transfer", ts, user_id="u1", device_id="phone-u1", amount=3_000_000,
            payee=Payee(id="payee-mum", card=Card(token="pan_payee-mum")),
        )  # fmt: skip
        if stopped.action == "challenge":
            assert isinstance(stopped.challenge, list) and "hardware_token" in stopped.challenge
            world.send(  # the code to a payee of weeks (2026.12.27) is passed; the token is not
                "challenge_result", ts + 60_000, user_id="u1", device_id="phone-u1",
                ref_event_id=event_id, method="hardware_token", outcome="failed",
            )  # fmt: skip
    assert stopped.action in ("review", "block"), stopped.reasons
    again = world.transfer("u1", world.at(TODAY + 1, 10.5), 900_000, payee="payee-mum")
    assert "after_stop_big_money" not in follow_on(again)  # the account's day is over
    assert "after_stop_same_counterparty" in follow_on(again)
    assert again.action in ("hold", "review")
    small = world.transfer("u1", world.at(TODAY + 1, 18), 5_000, payee="payee-mum")
    assert "after_stop_same_counterparty" not in follow_on(small)


def test_a_stopped_payee_keeps_large_transfers_waiting_for_the_week(world: World) -> None:
    """The scam's "safe account": after a transfer to it is stopped, large transfers to
    it wait, from the same victim past their own day and from another account; a payee
    an account has paid for weeks does not."""
    world.stop("u1", world.at(TODAY, 10), "phone-u1")
    again = world.transfer("u1", world.at(TODAY + 2, 10), 300_000)
    assert again.action in ("hold", "review") and "after_stop_payee" in follow_on(again)
    other = world.transfer("u2", world.at(TODAY + 2, 11), 300_000)
    assert "after_stop_payee" in follow_on(other)
    small = world.transfer("u2", world.at(TODAY + 2, 12), 5_000)
    assert "after_stop_payee" not in follow_on(small)
    week = world.transfer("u2", world.at(TODAY + 8, 11), 300_000)
    assert "after_stop_payee" not in follow_on(week)


def test_a_failed_face_makes_the_next_money_from_that_device_ask_it_again(world: World) -> None:
    """Escalation after a refusal (`stepup_failed_then_money`): the operation refused at a
    face check comes back from the same device a day later, when the rule that asked for it
    no longer fires; it is asked the face again. A pass ends it; the account's own phone and
    an account that failed nothing are not asked."""
    world.stop("u1", world.at(TODAY, 10), "dev-x")
    asked, first = world.send(
        "payment", world.at(TODAY, 11), user_id="u2", device_id="dev-x", amount=5_000,
        merchant=Merchant(id="m-canteen", category="food"),
    )  # fmt: skip
    assert first.action == "challenge"
    world.result(asked, world.at(TODAY, 11.01), "u2", "dev-x", outcome="failed")
    assert world.pay("u1", world.at(TODAY + 1, 12.5)).action == "allow"  # failed nothing
    assert world.pay("u2", world.at(TODAY + 1, 12.5)).action == "allow"  # its own phone
    again_id, again = world.send(
        "payment", world.at(TODAY + 1, 13), user_id="u2", device_id="dev-x",
        amount=5_000, merchant=Merchant(id="m-canteen", category="food"),
    )  # fmt: skip
    assert again.action == "challenge", again.reasons
    assert {r.rule for r in again.reasons} == {"stepup_failed_then_money"}
    assert again.challenge == ["face", "hardware_token"]
    world.result(again_id, world.at(TODAY + 1, 13.01), "u2", "dev-x")
    assert world.pay("u2", world.at(TODAY + 1, 14), device="dev-x").action == "allow"


def test_a_failed_hardware_token_is_asked_again_not_swapped_for_face(world: World) -> None:
    """`stepup_token_failed_then_money` (live since 2027.1.3): where the token was the
    method tried and failed (offered first where the owner's face answers nothing, a
    coached victim on their own phone), the money that comes back from that device a day
    later, or minutes later smaller, is asked the token or the bank's call-back again,
    never face, which the coached victim passes. A token passed ends it."""
    world.stop("u1", world.at(TODAY, 10), "dev-x")
    asked, first = world.send(
        "payment", world.at(TODAY, 11), user_id="u2", device_id="dev-x", amount=5_000,
        merchant=Merchant(id="m-canteen", category="food"),
    )  # fmt: skip
    assert first.action == "challenge" and isinstance(first.challenge, list)
    assert "hardware_token" in first.challenge
    world.result(
        asked, world.at(TODAY, 11.01), "u2", "dev-x", outcome="failed", method="hardware_token"
    )
    smaller = world.pay("u2", world.at(TODAY, 11.2), device="dev-x", fen=2_000)
    assert "stepup_token_failed_then_money" in {r.rule for r in smaller.reasons}
    assert "face" not in (smaller.challenge if isinstance(smaller.challenge, list) else [])
    again_id, again = world.send(
        "payment", world.at(TODAY + 1, 13), user_id="u2", device_id="dev-x",
        amount=5_000, merchant=Merchant(id="m-canteen", category="food"),
    )  # fmt: skip
    assert {r.rule for r in again.reasons} == {"stepup_token_failed_then_money"}, again.reasons
    assert again.action == "challenge" and again.challenge == ["hardware_token", "callback"]
    world.result(again_id, world.at(TODAY + 1, 13.01), "u2", "dev-x", method="hardware_token")
    assert world.pay("u2", world.at(TODAY + 1, 14), device="dev-x").action == "allow"


def test_a_call_back_passed_after_a_failed_token_is_not_asked_again(world: World) -> None:
    """The owner a token failure was recorded on (a scam victim on their own phone, an
    honest customer who gave up on a token) has no token: the call-back to the registered
    line ends `stepup_token_failed_then_money` on that device for `clear_hours`
    (`policy.outcomes.line_cleared`; asked the token alone, such an owner was asked it on
    every payment of the week, 2026.12.25). A failed call-back keeps it, and the
    account's other device is not asked."""
    world.stop("u1", world.at(TODAY, 10), "dev-x")
    asked, _ = world.send(
        "payment", world.at(TODAY, 11), user_id="u2", device_id="dev-x", amount=5_000,
        merchant=Merchant(id="m-canteen", category="food"),
    )  # fmt: skip
    world.result(
        asked, world.at(TODAY, 11.01), "u2", "dev-x", outcome="abandoned",
        method="hardware_token",
    )  # fmt: skip
    refused_id, refused = world.send(
        "payment", world.at(TODAY + 1, 13), user_id="u2", device_id="dev-x",
        amount=5_000, merchant=Merchant(id="m-canteen", category="food"),
    )  # fmt: skip
    assert refused.action == "challenge" and refused.challenge == ["hardware_token", "callback"]
    world.result(refused_id, world.at(TODAY + 1, 13.01), "u2", "dev-x", "failed", "callback")
    assert world.pay("u2", world.at(TODAY + 1, 14)).action == "allow"  # its own phone
    retry_id, retry = world.send(
        "payment", world.at(TODAY + 1, 15), user_id="u2", device_id="dev-x",
        amount=5_000, merchant=Merchant(id="m-canteen", category="food"),
    )  # fmt: skip
    assert {r.rule for r in retry.reasons} == {"stepup_token_failed_then_money"}, retry.reasons
    world.result(retry_id, world.at(TODAY + 1, 15.01), "u2", "dev-x", method="callback")
    later = world.pay("u2", world.at(TODAY + 2, 12.5), device="dev-x")
    assert later.action == "allow", later.reasons


def test_money_under_a_stop_after_a_failed_token_goes_to_a_person(world: World) -> None:
    """`after_stop_token_failed`: the account was stopped within the day and a hardware
    token was failed on this device since, with nothing passed: its money goes to review,
    not to a hold (which outranks the token asked again, and which the coached victim
    never revokes) nor to the challenge alone. Another account, and the same device once
    the account's day under its last stop (that review) is over, are not sent to a person
    for it."""
    world.stop("u1", world.at(TODAY, 10), "phone-u1")
    asked, first = world.send(
        "payment", world.at(TODAY, 11), user_id="u1", device_id="dev-y", amount=5_000,
        merchant=Merchant(id="m-canteen", category="food"),
    )  # fmt: skip
    assert first.action == "challenge" and "hardware_token" in (first.challenge or [])
    assert "after_stop_token_failed" not in {r.rule for r in first.reasons}
    world.result(asked, world.at(TODAY, 11.01), "u1", "dev-y", "failed", "hardware_token")
    again = world.pay("u1", world.at(TODAY, 14), device="dev-y")
    assert again.action == "review", again.reasons
    assert "after_stop_token_failed" in {r.rule for r in again.reasons}
    other = world.pay("u2", world.at(TODAY, 14), device="dev-y")
    assert "after_stop_token_failed" not in {r.rule for r in other.reasons}
    day_over = world.pay("u1", world.at(TODAY + 1, 14.5), device="dev-y")
    assert "after_stop_token_failed" not in {r.rule for r in day_over.reasons}
    assert day_over.action == "challenge", day_over.reasons  # the token is asked again


def test_a_transfer_to_a_payee_confirmed_as_fraud_is_blocked_not_reviewed(world: World) -> None:
    """`after_stop_payee_confirmed`: once a stopped transfer's payee is named by a fraud
    label, the next transfer to it, small or from another account a day later, is blocked
    (a review went to a desk that asks the coached victim, who vouches for it; reviewed
    on main); a payee nobody confirmed is not."""
    stopped = world.stop("u1", world.at(TODAY, 10), "phone-u1")
    world.send(
        "label", world.at(TODAY, 11), user_id="u1", ref_event_id=stopped, label="fraud",
        source="analyst",
    )  # fmt: skip
    again = world.transfer("u1", world.at(TODAY + 1, 12), 5_000)
    assert again.action == "block" and "after_stop_payee_confirmed" in {
        r.rule for r in again.reasons
    }
    other = world.transfer("u2", world.at(TODAY + 1, 13), 300_000)
    assert other.action == "block", other.reasons
    elsewhere = world.transfer("u2", world.at(TODAY + 1, 14), 5_000, payee="payee-mum")
    assert "after_stop_payee_confirmed" not in {r.rule for r in elsewhere.reasons}
