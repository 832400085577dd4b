"""Issue 11's behavioural rules in rules/default.yaml, on small hand-made event sequences.

Each rule is pinned by a sequence where it must fire and a near twin where it must not,
decided by a real in-memory engine with the default feature catalog and ruleset, so a
change to a rule, a signal or a feature that breaks the behaviour is seen. Every customer
has a back-filled `register` record and two weeks of small daytime payments from one phone
on one home network: enough history for "unlike this customer's own past" to be known.
"""

from typing import Any

import pytest
from default_world import DAY0, DAY_MS, DefaultWorld

from payguard.decision import Decision
from payguard.events import Card, Merchant, Payee

HISTORY_DAYS = 14
TODAY = HISTORY_DAYS + 1
HOME_IP = "10.1.1.5"
CREDIT_A = Card(token="pan_credit_a", kind="credit")
CREDIT_B = Card(token="pan_credit_b", kind="credit")
CREDIT_C = Card(token="pan_credit_c", kind="credit")


class World(DefaultWorld):
    """Customers with two weeks of history; `at(day, hour)` is local time."""

    def send(self, type: str, ts: int, **fields: Any) -> Decision:
        return self.decide(type, ts, **fields)[1]

    def customer(self, user: str, fen: int = 10_000, card: Card = CREDIT_A) -> None:
        """An account opened long ago that paid `fen` at lunch every day for two weeks."""
        self.send("register", DAY0 - 400 * DAY_MS, user_id=user, device_id=f"phone-{user}")
        for day in range(HISTORY_DAYS):
            self.send(
                "payment",
                self.at(day, 12.5),
                **self.home(user),
                card=card,
                amount=fen,
                merchant=Merchant(id="m-canteen", category="food"),
            )

    @staticmethod
    def home(user: str) -> dict[str, Any]:
        return {"user_id": user, "device_id": f"phone-{user}", "ip": HOME_IP}


def rules_of(decision: Decision) -> set[str]:
    return {reason.rule for reason in decision.reasons}


@pytest.fixture
def world() -> World:
    return World()


def _payee(name: str) -> Payee:
    return Payee(id=f"payee-{name}", card=Card(token=f"pan_{name}"))


# --- new_payee_large_unlike_own_past ----------------------------------------------------


def test_a_large_unusual_transfer_to_a_new_payee_asks_for_a_call_back(world: World) -> None:
    world.customer("u1")
    decision = world.send(
        "transfer", world.at(TODAY, 11), **world.home("u1"), amount=800_000, payee=_payee("safe")
    )
    assert "new_payee_large_unlike_own_past" in rules_of(decision)
    assert decision.action in ("challenge", "hold", "review")
    if decision.action == "challenge":
        assert set(decision.challenge) <= {"callback", "hardware_token"}  # type: ignore[arg-type]


def test_a_known_payee_or_a_small_amount_is_not_a_safe_account_transfer(world: World) -> None:
    world.customer("u1")
    landlord = _payee("landlord")
    world.send("transfer", world.at(3, 11), **world.home("u1"), amount=800_000, payee=landlord)
    again = world.send(
        "transfer", world.at(TODAY, 11), **world.home("u1"), amount=800_000, payee=landlord
    )
    small = world.send(
        "transfer", world.at(TODAY, 12), **world.home("u1"), amount=30_000, payee=_payee("friend")
    )
    assert "new_payee_large_unlike_own_past" not in rules_of(again)
    assert "new_payee_large_unlike_own_past" not in rules_of(small)


# --- loan_then_drain -----------------------------------------------------------------------


def test_money_to_a_new_payee_right_after_a_loan_is_reviewed(world: World) -> None:
    world.customer("u1")
    lender = Merchant(id="lender-01", category="loan")
    world.send(
        "loan_apply", world.at(TODAY, 10), **world.home("u1"), amount=2_000_000, merchant=lender
    )
    decision = world.send(
        "transfer", world.at(TODAY, 10.5), **world.home("u1"), amount=300_000, payee=_payee("x")
    )
    assert "loan_then_drain" in rules_of(decision)
    assert decision.action == "review"


def test_the_same_transfer_without_a_loan_is_not_a_loan_drain(world: World) -> None:
    world.customer("u1")
    decision = world.send(
        "transfer", world.at(TODAY, 10.5), **world.home("u1"), amount=300_000, payee=_payee("x")
    )
    assert "loan_then_drain" not in rules_of(decision)


# --- night_drain_unlike_own_past -----------------------------------------------------------


def test_a_new_payee_at_an_hour_the_customer_never_pays_is_reviewed(world: World) -> None:
    world.customer("u1")
    decision = world.send(
        "transfer", world.at(TODAY, 3.2), **world.home("u1"), amount=300_000, payee=_payee("x")
    )
    assert "night_drain_unlike_own_past" in rules_of(decision)
    assert decision.action == "review"


def test_the_same_transfer_at_the_customers_usual_hour_is_not_a_night_drain(
    world: World,
) -> None:
    world.customer("u1")
    decision = world.send(
        "transfer", world.at(TODAY, 12.5), **world.home("u1"), amount=300_000, payee=_payee("x")
    )
    assert "night_drain_unlike_own_past" not in rules_of(decision)


def _night_worker(world: World) -> None:
    """`n1`, an old account that pays at 3 a.m. every day of the history: its own hour."""
    world.send("register", DAY0 - 400 * DAY_MS, user_id="n1", device_id="phone-n1")
    for day in range(HISTORY_DAYS):
        world.send(
            "payment",
            world.at(day, 3.1),
            **world.home("n1"),
            card=CREDIT_A,
            amount=10_000,
            merchant=Merchant(id="m-canteen", category="food"),
        )


def test_a_night_worker_paying_at_their_own_hour_is_not_a_night_drain(world: World) -> None:
    _night_worker(world)
    decision = world.send(
        "transfer", world.at(TODAY, 3.2), **world.home("n1"), amount=300_000, payee=_payee("x")
    )
    assert "night_drain_unlike_own_past" not in rules_of(decision)


# --- cash_out_unlike_merchant and cash_out_second_credit_card ------------------------------


def _small_shop(world: World, sales: int) -> Merchant:
    shop = Merchant(id="m-shop", category="other")
    for i in range(sales):
        world.send(
            "payment",
            world.at(TODAY - 3, 9 + i * 0.5),
            user_id=f"buyer{i}",
            card=Card(token=f"pan_buyer{i}"),
            amount=5_000 + 100 * i,
            merchant=shop,
        )
    return shop


def _ticket(
    world: World, shop: Merchant, amount: int, *, card: Card, user: str = "u1", hour: int = 15
) -> Decision:
    """`user` pays `shop` `amount` fen with `card` from home, today at `hour`:00."""
    when, home = world.at(TODAY, hour), world.home(user)
    return world.send("payment", when, **home, card=card, amount=amount, merchant=shop)


def test_a_cash_out_sized_ticket_at_a_shop_that_sells_small_is_reviewed(world: World) -> None:
    world.customer("u1")
    shop = _small_shop(world, sales=6)
    decision = _ticket(world, shop, 499_950, card=CREDIT_A)
    assert "cash_out_unlike_merchant" in rules_of(decision)
    assert decision.action == "review"


def test_a_shop_without_enough_history_or_a_debit_card_is_not_judged_on_its_tickets(
    world: World,
) -> None:
    world.customer("u1")
    shop = _small_shop(world, sales=3)
    young = _ticket(world, shop, 499_950, card=CREDIT_A)
    world.customer("u2", card=Card(token="pan_debit_u2", kind="debit"))
    _small_shop(world, sales=3)
    debit = world.send(
        "payment",
        world.at(TODAY, 16),
        **world.home("u2"),
        card=Card(token="pan_debit_u2", kind="debit"),
        amount=499_950,
        merchant=shop,
    )
    assert "cash_out_unlike_merchant" not in rules_of(young)
    assert "cash_out_unlike_merchant" not in rules_of(debit)


def test_a_second_credit_card_paying_the_same_shop_large_is_reviewed(world: World) -> None:
    world.customer("u1")
    shop = Merchant(id="m-partner", category="other")
    home = world.home("u1")
    world.send("payment", world.at(TODAY, 15), **home, card=CREDIT_A, amount=300_000, merchant=shop)
    decision = world.send(
        "payment", world.at(TODAY + 1, 15), **home, card=CREDIT_B, amount=400_000, merchant=shop
    )
    assert "cash_out_second_credit_card" in rules_of(decision)
    assert decision.action == "review"


def test_the_same_card_again_is_not_a_card_rotation(world: World) -> None:
    world.customer("u1")
    shop = Merchant(id="m-partner", category="other")
    home = world.home("u1")
    world.send("payment", world.at(TODAY, 15), **home, card=CREDIT_A, amount=300_000, merchant=shop)
    decision = world.send(
        "payment", world.at(TODAY + 1, 15), **home, card=CREDIT_A, amount=400_000, merchant=shop
    )
    assert "cash_out_second_credit_card" not in rules_of(decision)


def _three_cards(world: World, fen: int) -> list[Decision]:
    """u1 pays one shop with CREDIT_A, CREDIT_B and CREDIT_C on three days, `fen` each."""
    shop = Merchant(id="m-partner", category="other")
    home = world.home("u1")
    return [
        world.send("payment", world.at(TODAY + i, 15), **home, card=card, amount=fen, merchant=shop)
        for i, card in enumerate((CREDIT_A, CREDIT_B, CREDIT_C))
    ]


def test_a_third_credit_card_paying_the_same_shop_large_is_reviewed(world: World) -> None:
    """An odd amount the customer pays every day: only the number of cards says cash-out."""
    world.customer("u1", fen=123_457)
    first, second, third = _three_cards(world, 123_457)
    assert "cash_out_third_credit_card" not in rules_of(first) | rules_of(second)
    assert "cash_out_third_credit_card" in rules_of(third)
    assert third.action == "review"


def test_a_third_card_for_a_small_purchase_is_not_a_card_rotation(world: World) -> None:
    world.customer("u1", fen=12_345)
    *_, third = _three_cards(world, 12_345)
    assert "cash_out_third_credit_card" not in rules_of(third)


# --- fresh_device_sms_money: a new device on a new network ----------------------------------


def _fresh_device_payment(world: World, ip: str) -> Decision:
    world.customer("u1")
    who = {"user_id": "u1", "device_id": "emulator-9", "ip": ip}
    t = world.at(TODAY, 14)
    world.send("login", t, **who, success=True, method="sms")
    world.send("otp_send", t + 60_000, **who, phone="tel_u1", method="sms")
    return world.send(
        "payment",
        t + 120_000,
        **who,
        card=CREDIT_A,
        amount=300_000,
        merchant=Merchant(id="m-gift", category="gift_card"),
    )


def test_a_code_read_aloud_to_a_new_device_on_a_new_network_is_challenged(world: World) -> None:
    decision = _fresh_device_payment(world, ip="203.0.113.77")
    assert "fresh_device_sms_money" in rules_of(decision)


def test_a_new_phone_on_the_home_network_is_not_a_code_read_aloud(world: World) -> None:
    decision = _fresh_device_payment(world, ip=HOME_IP)
    assert "fresh_device_sms_money" not in rules_of(decision)


# --- cooling_off_new_payee: small first transfers after a change are not held --------------


def _after_new_card(world: World, fen: int) -> Decision:
    world.customer("u1")
    home = world.home("u1")
    world.send("card_bind", world.at(TODAY, 9), **home, card=CREDIT_B)
    return world.send("transfer", world.at(TODAY, 12.5), **home, amount=fen, payee=_payee("friend"))


def test_a_new_payee_after_a_new_card_is_held_when_the_amount_matters(world: World) -> None:
    decision = _after_new_card(world, fen=300_000)
    assert "cooling_off_new_payee" in rules_of(decision)


def test_a_small_first_transfer_after_a_new_card_is_not_held(world: World) -> None:
    decision = _after_new_card(world, fen=20_000)
    assert "cooling_off_new_payee" not in rules_of(decision)


# --- loan_at_unfamiliar_night_hour and loan_after_account_change ---------------------------

LENDER = Merchant(id="lender-01", category="loan")


def test_a_loan_at_an_hour_the_customer_never_pays_is_reviewed(world: World) -> None:
    world.customer("u1")
    decision = world.send(
        "loan_apply", world.at(TODAY, 3.5), **world.home("u1"), amount=3_000_000, merchant=LENDER
    )
    assert "loan_at_unfamiliar_night_hour" in rules_of(decision)
    assert decision.action == "review"


def test_a_daytime_loan_or_a_night_workers_loan_is_not_an_unfamiliar_hour(world: World) -> None:
    world.customer("u1")
    day = world.send(
        "loan_apply", world.at(TODAY, 12.5), **world.home("u1"), amount=3_000_000, merchant=LENDER
    )
    _night_worker(world)
    night_worker = world.send(
        "loan_apply", world.at(TODAY, 3.5), **world.home("n1"), amount=3_000_000, merchant=LENDER
    )
    assert "loan_at_unfamiliar_night_hour" not in rules_of(day)
    assert "loan_at_unfamiliar_night_hour" not in rules_of(night_worker)


def test_a_night_loan_on_go_live_day_is_left_alone(world: World) -> None:
    """Go-live: before payguard has watched for a day, no one's hours are known."""
    decision = world.send(
        "loan_apply", world.at(TODAY, 3.5), **world.home("u9"), amount=3_000_000, merchant=LENDER
    )
    assert "loan_at_unfamiliar_night_hour" not in rules_of(decision)


def test_a_night_loan_on_a_dormant_account_is_reviewed(world: World) -> None:
    """An account with no payment while payguard watched has no night habit either."""
    world.customer("u1")
    world.send("register", DAY0 - 400 * DAY_MS, user_id="d1", device_id="phone-d1")
    decision = world.send(
        "loan_apply", world.at(TODAY, 3.5), **world.home("d1"), amount=3_000_000, merchant=LENDER
    )
    assert "loan_at_unfamiliar_night_hour" in rules_of(decision)


def test_a_loan_right_after_a_password_reset_or_from_a_new_phone_is_reviewed(
    world: World,
) -> None:
    world.customer("u1")
    world.customer("u2")
    world.send("password_reset", world.at(TODAY, 10), **world.home("u1"), success=True)
    after_reset = world.send(
        "loan_apply", world.at(TODAY, 11), **world.home("u1"), amount=3_000_000, merchant=LENDER
    )
    new_phone = {**world.home("u2"), "device_id": "phone-new"}
    world.send("login", world.at(TODAY, 10), **new_phone, success=True)
    from_new_phone = world.send(
        "loan_apply", world.at(TODAY, 11), **new_phone, amount=3_000_000, merchant=LENDER
    )
    world.customer("u3")
    elsewhere = {**world.home("u3"), "ip": "172.16.9.9"}
    world.send("login", world.at(TODAY, 10), **elsewhere, success=True)
    from_new_network = world.send(
        "loan_apply", world.at(TODAY, 11), **elsewhere, amount=3_000_000, merchant=LENDER
    )
    assert "loan_after_account_change" in rules_of(after_reset)
    assert "loan_after_account_change" in rules_of(from_new_phone)
    assert "loan_after_account_change" in rules_of(from_new_network)
    assert after_reset.action == from_new_phone.action == from_new_network.action == "review"


def test_a_loan_on_the_usual_phone_or_a_small_one_after_a_reset_is_not_reviewed(
    world: World,
) -> None:
    world.customer("u1")
    usual = world.send(
        "loan_apply", world.at(TODAY, 11), **world.home("u1"), amount=3_000_000, merchant=LENDER
    )
    world.send("password_reset", world.at(TODAY, 12), **world.home("u1"), success=True)
    small = world.send(
        "loan_apply", world.at(TODAY, 13), **world.home("u1"), amount=100_000, merchant=LENDER
    )
    stale = world.send(
        "loan_apply", world.at(TODAY + 2, 13), **world.home("u1"), amount=3_000_000, merchant=LENDER
    )
    assert "loan_after_account_change" not in rules_of(usual)
    assert "loan_after_account_change" not in rules_of(small)
    assert "loan_after_account_change" not in rules_of(stale)


def test_a_second_loan_within_a_day_is_reviewed_the_first_is_not(world: World) -> None:
    world.customer("u1")
    first = world.send(
        "loan_apply", world.at(TODAY, 11), **world.home("u1"), amount=3_000_000, merchant=LENDER
    )
    other_lender = Merchant(id="lender-02", category="loan")
    second = world.send(
        "loan_apply",
        world.at(TODAY, 13),
        **world.home("u1"),
        amount=3_000_000,
        merchant=other_lender,
    )
    next_week = world.send(
        "loan_apply", world.at(TODAY + 7, 13), **world.home("u1"), amount=3_000_000, merchant=LENDER
    )
    assert "loan_stacking" not in rules_of(first)
    assert "loan_stacking" in rules_of(second)
    assert second.action == "review"
    assert "loan_stacking" not in rules_of(next_week)


def test_a_small_test_transfer_first_does_not_hide_the_new_payee(world: World) -> None:
    """Paid 900 CNY a minute ago, the payee is no longer "never paid", but it is still new
    today: the loan sent on after the test transfer is reviewed."""
    world.customer("u1")
    world.send(
        "loan_apply", world.at(TODAY, 10), **world.home("u1"), amount=2_000_000, merchant=LENDER
    )
    safe = _payee("safe")
    world.send("transfer", world.at(TODAY, 10.4), **world.home("u1"), amount=90_000, payee=safe)
    decision = world.send(
        "transfer", world.at(TODAY, 10.5), **world.home("u1"), amount=2_000_000, payee=safe
    )
    assert "loan_then_drain" in rules_of(decision)
    assert "new_payee_large_unlike_own_past" in rules_of(decision)
    assert decision.action == "review"


def test_a_payee_first_paid_days_ago_is_not_new_today(world: World) -> None:
    world.customer("u1")
    landlord = _payee("landlord")
    world.send("transfer", world.at(3, 11), **world.home("u1"), amount=90_000, payee=landlord)
    world.send(
        "loan_apply", world.at(TODAY, 10), **world.home("u1"), amount=2_000_000, merchant=LENDER
    )
    decision = world.send(
        "transfer", world.at(TODAY, 10.5), **world.home("u1"), amount=2_000_000, payee=landlord
    )
    assert "loan_then_drain" not in rules_of(decision)
    assert "new_payee_large_unlike_own_past" not in rules_of(decision)


# --- fresh_device_money_adds_up: a session drained under the code threshold ----------------


def _drip_from(world: World, ip: str) -> list[Decision]:
    """Two gift-card payments of 900 CNY, 20 minutes apart, from a device new to the account
    (no code asked: each is under the bank's 2,000 CNY threshold)."""
    world.customer("u1")
    who = {"user_id": "u1", "device_id": "emulator-7", "ip": ip}
    t = world.at(TODAY, 15)
    world.send("login", t, **who, success=True, method="sms")
    gift = Merchant(id="m-gift", category="gift_card")
    return [
        world.send(
            "payment", t + (1 + 20 * i) * 60_000, **who, card=CREDIT_A, amount=90_000, merchant=gift
        )
        for i in range(2)
    ]


def test_small_payments_adding_up_from_a_new_device_on_a_new_network_are_challenged(
    world: World,
) -> None:
    first, second = _drip_from(world, ip="203.0.113.77")
    assert "fresh_device_money_adds_up" not in rules_of(first)
    assert "fresh_device_money_adds_up" in rules_of(second)
    assert second.action == "challenge"
    assert "sms_otp" not in (second.challenge or [])


def test_a_new_phone_on_the_home_network_paying_the_same_is_not_a_drain(world: World) -> None:
    _, second = _drip_from(world, ip=HOME_IP)
    assert "fresh_device_money_adds_up" not in rules_of(second)


# --- coached_voucher_spree: vouchers one code after another on the customer's own phone ------


def _vouchers_one_code_each(world: World, user: str, daily_fen: int) -> list[Decision]:
    """A customer who pays `daily_fen` at lunch buys 1,200 and 1,000 CNY of gift cards on
    their own phone at home, each behind its own SMS code."""
    world.customer(user, fen=daily_fen, card=Card(token=f"pan_debit_{user}", kind="debit"))
    who = world.home(user)
    gift = Merchant(id="m-gift", category="gift_card")
    t = world.at(TODAY, 16)
    out = []
    for i, fen in enumerate((120_000, 100_000)):
        at = t + i * 15 * 60_000
        world.send("otp_send", at, **who, phone=f"tel_{user}", method="sms")
        world.send("otp_verify", at + 40_000, **who, method="sms", success=True)
        card = Card(token=f"pan_debit_{user}", kind="debit")
        out.append(world.send("payment", at + 60_000, **who, card=card, amount=fen, merchant=gift))
    return out


def test_vouchers_one_code_after_another_far_above_the_customers_spending_get_a_call_back(
    world: World,
) -> None:
    first, second = _vouchers_one_code_each(world, "u1", daily_fen=10_000)
    assert "coached_voucher_spree" not in rules_of(first)
    assert "coached_voucher_spree" in rules_of(second)
    assert second.action == "challenge"
    assert "face" not in (second.challenge or []) and "in_app_confirm" not in (
        second.challenge or []
    )


def test_the_same_vouchers_from_a_customer_who_spends_like_that_are_left_alone(
    world: World,
) -> None:
    _, second = _vouchers_one_code_each(world, "u2", daily_fen=100_000)
    assert "coached_voucher_spree" not in rules_of(second)


# --- limits over every channel ask for a call, not a face ----------------------------------


def test_over_the_accounts_daily_limit_the_bank_calls_back_instead_of_asking_a_face(
    world: World,
) -> None:
    debit = Card(token="pan_debit_u1", kind="debit")
    world.customer("u1", card=debit)
    shop = Merchant(id="m-furniture", category="other")
    t = world.at(TODAY, 12.5)
    world.send("payment", t, **world.home("u1"), card=debit, amount=1_500_000, merchant=shop)
    decision = world.send(
        "payment", t + 600_000, **world.home("u1"), card=debit, amount=900_000, merchant=shop
    )
    assert "user_daily_limit" in rules_of(decision)
    assert decision.action == "challenge"
    assert "face" not in (decision.challenge or [])


def _over_the_daily_limit(world: World, shop: Merchant) -> Decision:
    """A customer paying 15,000 CNY and then 9,000 CNY at `shop` within ten minutes, on
    their own phone at home with a debit card: over the account's and the card's 20,000."""
    debit = Card(token="pan_debit_u1", kind="debit")
    world.customer("u1", card=debit)
    t = world.at(TODAY, 12.5)
    world.send("payment", t, **world.home("u1"), card=debit, amount=1_500_000, merchant=shop)
    return world.send(
        "payment", t + 600_000, **world.home("u1"), card=debit, amount=900_000, merchant=shop
    )


def test_over_the_daily_limit_at_a_shop_of_two_weeks_the_sms_code_answers(world: World) -> None:
    """2026.12.27: the canteen the customer has paid every day for two weeks is their own;
    "do you mean to go over?" is answered with the code."""
    decision = _over_the_daily_limit(world, Merchant(id="m-canteen", category="food"))
    rules = rules_of(decision)
    assert {"user_daily_limit_own_counterparty", "card_daily_limit_own_counterparty"} <= rules
    assert not {"user_daily_limit", "card_daily_limit"} & rules
    assert decision.action == "challenge"
    assert "sms_otp" in (decision.challenge or [])


def test_over_the_daily_limit_at_a_shop_first_paid_today_the_code_is_not_enough(
    world: World,
) -> None:
    decision = _over_the_daily_limit(world, Merchant(id="m-furniture", category="other"))
    rules = rules_of(decision)
    assert {"user_daily_limit", "card_daily_limit"} <= rules
    assert not {"user_daily_limit_own_counterparty", "card_daily_limit_own_counterparty"} & rules
    assert "sms_otp" not in (decision.challenge or [])


def test_over_the_daily_limit_to_a_payee_first_paid_three_days_ago_the_code_is_not_enough(
    world: World,
) -> None:
    """A "safe account" a coached victim first paid a few days ago is not their own yet."""
    debit = Card(token="pan_debit_u1", kind="debit")
    world.customer("u1", card=debit)
    safe = _payee("safe")
    world.send("transfer", world.at(TODAY - 3, 15), **world.home("u1"), amount=50_000, payee=safe)
    t = world.at(TODAY, 15)
    world.send("transfer", t, **world.home("u1"), card=debit, amount=1_500_000, payee=safe)
    decision = world.send(
        "transfer", t + 600_000, **world.home("u1"), card=debit, amount=900_000, payee=safe
    )
    rules = rules_of(decision)
    assert "user_daily_limit" in rules
    assert "user_daily_limit_own_counterparty" not in rules
    assert "sms_otp" not in (decision.challenge or [])


def test_a_daytime_transfer_at_an_hour_the_customer_rarely_pays_is_not_a_night_drain(
    world: World,
) -> None:
    world.customer("u1")
    decision = world.send(
        "transfer", world.at(TODAY, 19.5), **world.home("u1"), amount=300_000, payee=_payee("x")
    )
    assert "night_drain_unlike_own_past" not in rules_of(decision)


# --- coached_transfer_spree: a "refund account" paid one code after another ----------------


def _transfers_one_code_each(world: World, user: str, daily_fen: int) -> list[Decision]:
    """A customer who pays `daily_fen` at lunch sends 1,200 and then 1,000 CNY to an account
    they never paid, on their own phone at home, each behind its own SMS code."""
    world.customer(user, fen=daily_fen, card=Card(token=f"pan_debit_{user}", kind="debit"))
    who = world.home(user)
    t = world.at(TODAY, 16)
    out = []
    for i, fen in enumerate((120_000, 100_000)):
        at = t + i * 15 * 60_000
        world.send("otp_send", at, **who, phone=f"tel_{user}", method="sms")
        world.send("otp_verify", at + 40_000, **who, method="sms", success=True)
        out.append(world.send("transfer", at + 60_000, **who, amount=fen, payee=_payee("refund")))
    return out


def test_transfers_to_a_new_payee_one_code_after_another_get_a_call_back(world: World) -> None:
    first, second = _transfers_one_code_each(world, "u1", daily_fen=10_000)
    assert "coached_transfer_spree" not in rules_of(first)
    assert "coached_transfer_spree" in rules_of(second)
    assert "face" not in (second.challenge or [])


def test_the_same_transfers_from_a_customer_who_moves_that_much_are_left_alone(
    world: World,
) -> None:
    _, second = _transfers_one_code_each(world, "u2", daily_fen=100_000)
    assert "coached_transfer_spree" not in rules_of(second)


# --- 2026.12.6: a cash-out ring's first tickets, everyday spending after a lost phone ------


def test_a_large_unusual_credit_ticket_at_a_shop_that_barely_traded_is_reviewed(
    world: World,
) -> None:
    """The first ticket of a ring that spreads its cardholders over several new shops: an
    odd amount (not near round), the shop's first customer, unusual for the cardholder."""
    world.customer("u1")
    shop = _small_shop(world, sales=1)
    decision = _ticket(world, shop, 312_740, card=CREDIT_A)
    assert "cash_out_first_tickets_new_shop" in rules_of(decision)
    assert decision.action == "review"


def test_a_shop_with_customers_a_debit_card_or_a_usual_amount_is_not_a_first_ticket(
    world: World,
) -> None:
    world.customer("u1")
    busy = _small_shop(world, sales=4)
    trading = _ticket(world, busy, 312_740, card=CREDIT_A)
    world.customer("u2", fen=150_000)
    new_shop = Merchant(id="m-new", category="other")
    world.send(
        "payment",
        world.at(TODAY - 2, 10),
        user_id="buyer",
        card=Card(token="pan_b"),
        amount=5_000,
        merchant=new_shop,
    )
    usual = world.send(
        "payment",
        world.at(TODAY, 15),
        **world.home("u2"),
        card=CREDIT_A,
        amount=180_000,
        merchant=new_shop,
    )
    debit = Card(token="pan_debit_u3", kind="debit")
    world.customer("u3", card=debit)
    on_debit = world.send(
        "payment",
        world.at(TODAY, 16),
        **world.home("u3"),
        card=debit,
        amount=312_740,
        merchant=Merchant(id="m-new-2", category="other"),
    )
    for decision in (trading, usual, on_debit):
        assert "cash_out_first_tickets_new_shop" not in rules_of(decision)


def _lose_and_find_phone(world: World, user: str) -> None:
    """The owner reports the phone lost in the morning and undoes the report an hour later."""
    world.send("line_suspend", world.at(TODAY, 8), user_id=user, channel="phone")
    world.send("line_resume", world.at(TODAY, 9), user_id=user, channel="phone")


def test_everyday_spending_after_a_loss_report_goes_on(world: World) -> None:
    world.customer("u1")
    _lose_and_find_phone(world, "u1")
    lunch = world.send(
        "payment",
        world.at(TODAY, 12.5),
        **world.home("u1"),
        card=CREDIT_A,
        amount=10_000,
        merchant=Merchant(id="m-canteen", category="food"),
    )
    assert "loss_reported_then_money" not in rules_of(lunch)


def test_money_that_matters_after_a_loss_report_is_reviewed(world: World) -> None:
    world.customer("u1")
    _lose_and_find_phone(world, "u1")
    gift = world.send(
        "payment",
        world.at(TODAY, 12.5),
        **world.home("u1"),
        card=CREDIT_A,
        amount=80_000,
        merchant=Merchant(id="m-gift", category="gift_card"),
    )
    transfer = world.send(
        "transfer",
        world.at(TODAY, 13),
        **world.home("u1"),
        amount=30_000,
        payee=_payee("mule"),
    )
    assert "loss_reported_then_money" in rules_of(gift)
    assert "loss_reported_then_money" in rules_of(transfer)


# --- 2026.12.8: cash-out against the shop's own month -----------------------------------------


def _shop_selling(world: World, sales: int, fen: int, shop_id: str = "m-corner") -> Merchant:
    """A shop whose own customers paid it `sales` times about `fen` each, three days ago."""
    shop = Merchant(id=shop_id, category="other")
    for i in range(sales):
        world.send(
            "payment",
            world.at(TODAY - 3, 8 + i * 0.25),
            user_id=f"{shop_id}-buyer{i}",
            card=Card(token=f"pan_{shop_id}_buyer{i}"),
            amount=fen + 100 * (i % 5),
            merchant=shop,
        )
    return shop


def _two_tickets(world: World, shop: Merchant, first: int, second: int, *, card: Card) -> Decision:
    """u1 pays `shop` `first` fen yesterday with CREDIT_A and `second` fen today with `card`."""
    home = world.home("u1")
    world.send(
        "payment", world.at(TODAY - 1, 15), **home, card=CREDIT_A, amount=first, merchant=shop
    )
    return world.send(
        "payment", world.at(TODAY, 15), **home, card=card, amount=second, merchant=shop
    )


def test_a_cardholder_who_is_most_of_a_shops_month_is_reviewed(world: World) -> None:
    world.customer("u1", fen=60_000)
    shop = _shop_selling(world, sales=6, fen=5_000)
    decision = _two_tickets(world, shop, 150_013, 120_057, card=CREDIT_A)
    assert "cash_out_cardholder_is_the_shop" in rules_of(decision)
    assert decision.action == "review"


def test_a_regular_of_a_busy_shop_or_a_first_visit_is_not_the_shop(world: World) -> None:
    world.customer("u1", fen=60_000)
    busy = _shop_selling(world, sales=40, fen=50_000, shop_id="m-busy")
    regular = _two_tickets(world, busy, 150_013, 120_057, card=CREDIT_A)
    world.customer("u2", fen=60_000)
    small = _shop_selling(world, sales=6, fen=5_000)
    first = _ticket(world, small, 120_057, card=CREDIT_A, user="u2", hour=16)
    assert "cash_out_cardholder_is_the_shop" not in rules_of(regular)
    assert "cash_out_cardholder_is_the_shop" not in rules_of(first)


def test_an_odd_usual_ticket_eight_times_a_shops_own_is_reviewed(world: World) -> None:
    """1,234.56 CNY is neither near round nor unusual for a customer who pays 600 CNY a
    day, so cash_out_unlike_merchant leaves it; the shop's own tickets do not."""
    world.customer("u1", fen=60_000)
    shop = _shop_selling(world, sales=6, fen=5_000)
    decision = _ticket(world, shop, 123_456, card=CREDIT_A)
    assert "cash_out_ticket_far_above_shop" in rules_of(decision)
    assert "cash_out_unlike_merchant" not in rules_of(decision)
    assert decision.action == "review"


def test_a_ticket_near_a_shops_own_or_at_a_shop_without_history_is_not_far_above(
    world: World,
) -> None:
    world.customer("u1", fen=60_000)
    dear = _shop_selling(world, sales=6, fen=30_000, shop_id="m-dear")
    near_own = _ticket(world, dear, 123_456, card=CREDIT_A)
    world.customer("u2", fen=60_000)
    fresh = _shop_selling(world, sales=3, fen=5_000, shop_id="m-fresh")
    no_history = _ticket(world, fresh, 123_456, card=CREDIT_A, user="u2", hour=16)
    assert "cash_out_ticket_far_above_shop" not in rules_of(near_own)
    assert "cash_out_ticket_far_above_shop" not in rules_of(no_history)


def _refund(world: World, shop: Merchant, amount: int) -> None:
    """The shop refunds u1 part of a payment, this morning."""
    world.send(
        "refund", world.at(TODAY, 9), user_id="u1", card=CREDIT_A, amount=amount, merchant=shop
    )


def test_a_large_credit_payment_after_the_shop_refunded_part_is_reviewed(world: World) -> None:
    world.customer("u1", fen=60_000)
    shop = _shop_selling(world, sales=40, fen=80_000, shop_id="m-dear")
    home = world.home("u1")
    world.send(
        "payment", world.at(TODAY - 1, 15), **home, card=CREDIT_A, amount=150_013, merchant=shop
    )
    _refund(world, shop, 40_000)
    decision = world.send(
        "payment", world.at(TODAY, 15), **home, card=CREDIT_A, amount=120_057, merchant=shop
    )
    assert "cash_out_pays_again_after_refund" in rules_of(decision)
    assert decision.action == "review"


def test_without_a_refund_or_with_a_small_purchase_there_is_no_refund_cycle(world: World) -> None:
    world.customer("u1", fen=60_000)
    shop = _shop_selling(world, sales=40, fen=80_000, shop_id="m-dear")
    no_refund = _two_tickets(world, shop, 150_013, 120_057, card=CREDIT_A)
    _refund(world, shop, 40_000)
    small = world.send(
        "payment",
        world.at(TODAY, 17),
        **world.home("u1"),
        card=CREDIT_A,
        amount=30_000,
        merchant=shop,
    )
    assert "cash_out_pays_again_after_refund" not in rules_of(no_refund)
    assert "cash_out_pays_again_after_refund" not in rules_of(small)


# --- 2026.12.28: a cardholder back at a shop whose tickets are all over twice its own ---------


def test_a_cardholder_back_at_a_shop_far_above_its_tickets_is_reviewed(world: World) -> None:
    """900 and 800 CNY at a shop of 40 sales of 200 CNY: under 1,000 CNY, under a fifth of
    its month and under eight times its p90, so only the repeat says cash-out."""
    world.customer("u1")
    shop = _shop_selling(world, sales=40, fen=20_000, shop_id="m-busy")
    decision = _two_tickets(world, shop, 90_013, 80_057, card=CREDIT_A)
    assert "cash_out_regular_far_above_shop" in rules_of(decision)
    assert decision.action == "review"


def test_a_first_visit_a_visit_at_the_shops_price_or_a_usual_amount_is_not_far_above(
    world: World,
) -> None:
    """Near twins, each at its own shop of 40 sales of 200 CNY: the earlier ticket at the
    shop's own price, no earlier ticket, amounts usual for the cardholder, a debit card."""

    def busy(name: str) -> Merchant:
        return _shop_selling(world, sales=40, fen=20_000, shop_id=f"m-{name}")

    world.customer("u1")
    own_price = _two_tickets_of(world, "u1", busy("own"), 20_013, 80_057, card=CREDIT_A)
    world.customer("u2")
    first = _ticket(world, busy("first"), 80_057, card=CREDIT_A, user="u2", hour=16)
    world.customer("u3", fen=30_000)
    usual = _two_tickets_of(world, "u3", busy("usual"), 90_013, 80_057, card=CREDIT_A)
    debit_card = Card(token="pan_debit_u4", kind="debit")
    world.customer("u4", card=debit_card)
    debit = _two_tickets_of(world, "u4", busy("debit"), 90_013, 80_057, card=debit_card)
    for decision in (own_price, first, usual, debit):
        assert "cash_out_regular_far_above_shop" not in rules_of(decision)


def _two_tickets_of(
    world: World, user: str, shop: Merchant, first: int, second: int, *, card: Card
) -> Decision:
    """`user` pays `shop` `first` fen yesterday and `second` fen today, both with `card`."""
    home = world.home(user)
    world.send("payment", world.at(TODAY - 1, 18), **home, card=card, amount=first, merchant=shop)
    return world.send(
        "payment", world.at(TODAY, 18), **home, card=card, amount=second, merchant=shop
    )


# --- 2026.12.31: a cardholder stocking cards; a third ticket that is a sixth of the shop ------


def _bind(world: World, user: str, card: Card, day: int) -> None:
    """`user` binds `card` from home on `day`, at 9:00."""
    world.send("card_bind", world.at(day, 9), **world.home(user), card=card, phone=f"tel_{user}")


def test_an_old_card_far_above_a_shop_after_binding_two_new_ones_is_reviewed(
    world: World,
) -> None:
    """600 CNY at a shop of 40 sales of 200 CNY, with the card of two weeks, two days after
    binding two more: under every other cash-out rule's floor, share and multiple."""
    world.customer("u1", fen=60_000)
    shop = _shop_selling(world, sales=40, fen=20_000, shop_id="m-busy")
    _bind(world, "u1", CREDIT_B, TODAY - 2)
    _bind(world, "u1", CREDIT_C, TODAY - 2)
    decision = _ticket(world, shop, 60_013, card=CREDIT_A)
    assert "cash_out_cards_stocked_paid_with_another" in rules_of(decision)
    assert decision.action == "review"


def test_a_fresh_card_one_new_card_old_binds_or_the_shops_price_is_not_stocking(
    world: World,
) -> None:
    """Near twins, each its own customer and shop of 40 sales of 200 CNY: paying with a
    card just bound (a new phone, a first week), one card bound this week, two bound ten
    days ago, a ticket under twice the shop's p90."""

    def busy(name: str, fen: int = 20_000) -> Merchant:
        return _shop_selling(world, sales=40, fen=fen, shop_id=f"m-{name}")

    world.customer("u1", fen=60_000)
    _bind(world, "u1", CREDIT_B, TODAY - 2)
    _bind(world, "u1", CREDIT_C, TODAY - 2)
    fresh = _ticket(world, busy("fresh"), 60_013, card=CREDIT_B)
    world.customer("u2", fen=60_000)
    _bind(world, "u2", CREDIT_B, TODAY - 2)
    one = _ticket(world, busy("one"), 60_013, card=CREDIT_A, user="u2", hour=16)
    world.customer("u3", fen=60_000)
    _bind(world, "u3", CREDIT_B, TODAY - 10)
    _bind(world, "u3", CREDIT_C, TODAY - 10)
    old = _ticket(world, busy("old"), 60_013, card=CREDIT_A, user="u3", hour=17)
    world.customer("u4", fen=60_000)
    _bind(world, "u4", CREDIT_B, TODAY - 2)
    _bind(world, "u4", CREDIT_C, TODAY - 2)
    at_price = _ticket(world, busy("dear", 30_000), 55_013, card=CREDIT_A, user="u4", hour=18)
    for decision in (fresh, one, old, at_price):
        assert "cash_out_cards_stocked_paid_with_another" not in rules_of(decision)


def _tickets_of(
    world: World, user: str, shop: Merchant, amounts: list[int], *, card: Card = CREDIT_A
) -> Decision:
    """`user` pays `shop` each of `amounts` on consecutive days ending today, at 19:00."""
    home, first_day = world.home(user), TODAY - len(amounts) + 1
    decisions = [
        world.send(
            "payment", world.at(first_day + i, 19), **home, card=card, amount=fen, merchant=shop
        )
        for i, fen in enumerate(amounts)
    ]
    return decisions[-1]


RING_TICKETS = [90_013, 80_057, 70_041]
"""Three tickets under 1,000 CNY, usual for a cardholder who pays 600 CNY a day."""


def test_a_third_ticket_that_makes_a_cardholder_a_sixth_of_the_shop_is_reviewed(
    world: World,
) -> None:
    """2,401 CNY of a shop that took about 10,100 CNY from 50 sales: over a sixth with the
    third ticket, under cash_out_cardholder_is_the_shop's 1,000 CNY floor (and a fifth)."""
    world.customer("u1", fen=60_000)
    shop = _shop_selling(world, sales=50, fen=20_000, shop_id="m-busy")
    decision = _tickets_of(world, "u1", shop, RING_TICKETS)
    assert "cash_out_third_ticket_sixth_of_shop" in rules_of(decision)
    assert "cash_out_cardholder_is_the_shop" not in rules_of(decision)
    assert decision.action == "review"


def test_a_second_ticket_a_busier_shop_small_tickets_or_a_debit_card_is_not_a_sixth(
    world: World,
) -> None:
    """Near twins, each its own customer and shop: the second ticket only, the same three
    tickets at a shop of 100 sales, three of 400 CNY, the same three on a debit card."""

    def shop(name: str, sales: int = 50) -> Merchant:
        return _shop_selling(world, sales=sales, fen=20_000, shop_id=f"m-{name}")

    world.customer("u1", fen=60_000)
    second = _tickets_of(world, "u1", shop("second"), RING_TICKETS[:2])
    world.customer("u2", fen=60_000)
    busier = _tickets_of(world, "u2", shop("busier", sales=100), RING_TICKETS)
    world.customer("u3", fen=60_000)
    small = _tickets_of(world, "u3", shop("small", sales=20), [40_013, 40_057, 40_041])
    debit_card = Card(token="pan_debit_u4", kind="debit")
    world.customer("u4", fen=60_000, card=debit_card)
    debit = _tickets_of(world, "u4", shop("debit"), RING_TICKETS, card=debit_card)
    for decision in (second, busier, small, debit):
        assert "cash_out_third_ticket_sixth_of_shop" not in rules_of(decision)


# --- 2026.12.22: a merchant's API debits from several source networks in a day ---------------


def _api_debits(world: World, ips: list[str]) -> list[Decision]:
    """A biller debits one payer's card per address in `ips`, a minute apart, server to
    server (no device), on a merchant the engine first sees now."""
    biller = Merchant(id="m-biller", category="utilities")
    return [
        world.send(
            "payment",
            world.at(TODAY, 2) + i * 60_000,
            user_id=f"payer{i}",
            ip=ip,
            channel="api",
            card=Card(token=f"pan_payer{i}"),
            amount=15_000,
            merchant=biller,
        )
        for i, ip in enumerate(ips)
    ]


def test_api_debits_from_several_networks_in_a_day_are_reviewed(world: World) -> None:
    first, second, third = _api_debits(world, ["10.9.9.1", "45.128.62.177", "45.128.62.177"])
    assert "merchant_api_many_networks" not in rules_of(first) | rules_of(second)
    assert "merchant_api_many_networks" in rules_of(third)
    assert third.action == "review"


def test_api_debits_from_the_merchants_own_network_are_left(world: World) -> None:
    """Several servers in one /24 are one network: a biller's own batch."""
    decisions = _api_debits(world, ["10.9.9.1", "10.9.9.7", "10.9.9.1", "10.9.9.7"])
    for decision in decisions:
        assert "merchant_api_many_networks" not in rules_of(decision)


# --- card_bind_burst_hour: a burst of cards, not a new phone being set up (2026.12.27) -----


def _cards_bound(world: World, device: str, n: int) -> list[Decision]:
    """A customer of two weeks binds `n` cards a few minutes apart from `device` at home."""
    world.customer("u1")
    t = world.at(TODAY, 20)
    who = {"user_id": "u1", "device_id": device, "ip": HOME_IP}
    return [
        world.send(
            "card_bind", t + i * 180_000, **who, card=Card(token=f"pan_new_{i}"), phone="tel_u1"
        )
        for i in range(n)
    ]


def test_a_fourth_card_bound_within_the_hour_is_reviewed(world: World) -> None:
    decisions = _cards_bound(world, "phone-u1", 4)
    assert "card_bind_burst_hour" not in rules_of(decisions[2])
    assert "card_bind_burst_hour" in rules_of(decisions[3])
    assert decisions[3].action == "review"


def test_a_second_card_on_a_new_phone_is_how_a_customer_sets_it_up(world: World) -> None:
    """Until 2026.12.27 the second card bound from a new device went to review."""
    decisions = _cards_bound(world, "phone-u1-new", 2)
    assert "card_bind_burst_hour" not in rules_of(decisions[1])
    assert decisions[1].action != "review"


# --- 2027.1.2: a drain right after a password reset, on the owner's own phone ---------------

GIFT = Merchant(id="m-gift-cards", category="gift_card")


def _after_reset(world: World, user: str, *, reset: bool, hours_later: float = 3) -> Decision:
    """`user` (100 CNY a day at lunch for two weeks) resets the password on their own phone
    at 18:00 (or does not), then buys 1,500 CNY of gift cards `hours_later` on."""
    world.customer(user)
    if reset:
        world.send("password_reset", world.at(TODAY, 18), **world.home(user), success=True)
    return world.send(
        "payment",
        world.at(TODAY, 18 + hours_later),
        **world.home(user),
        card=CREDIT_A,
        amount=150_000,
        merchant=GIFT,
    )


def test_gift_cards_unlike_the_customer_right_after_a_reset_on_their_phone_are_reviewed(
    world: World,
) -> None:
    decision = _after_reset(world, "u1", reset=True)
    assert "reset_then_drain_unlike_own_past" in rules_of(decision)
    assert decision.action == "review"


def test_a_loan_under_the_big_amount_after_a_reset_is_reviewed_without_one_not(
    world: World,
) -> None:
    """1,500 CNY borrowed by a customer of 100 CNY a day: under loan_after_account_change's
    2,000 CNY, unusual for them. After a reset on their phone it is reviewed."""
    world.customer("u1")
    world.customer("u2")
    world.send("password_reset", world.at(TODAY, 18), **world.home("u1"), success=True)
    after_reset = world.send(
        "loan_apply", world.at(TODAY, 19), **world.home("u1"), amount=150_000, merchant=LENDER
    )
    without = world.send(
        "loan_apply", world.at(TODAY, 19), **world.home("u2"), amount=150_000, merchant=LENDER
    )
    assert "reset_then_drain_unlike_own_past" in rules_of(after_reset)
    assert "loan_after_account_change" not in rules_of(after_reset)
    assert after_reset.action == "review"
    assert "reset_then_drain_unlike_own_past" not in rules_of(without)


def test_a_transfer_to_a_new_payee_after_a_reset_is_left_to_the_cooling_off_hold(
    world: World,
) -> None:
    world.customer("u1")
    home = world.home("u1")
    world.send("password_reset", world.at(TODAY, 18), **home, success=True)
    to_new = world.send(
        "transfer", world.at(TODAY, 20), **home, amount=80_000, payee=_payee("stranger")
    )
    assert "reset_then_drain_unlike_own_past" not in rules_of(to_new)


def test_no_reset_a_stale_reset_or_the_customers_own_spending_is_not_a_drain(
    world: World,
) -> None:
    without = _after_reset(world, "u1", reset=False)
    stale = _after_reset(world, "u2", reset=True, hours_later=26)
    world.customer("u3")
    home = world.home("u3")
    world.send("password_reset", world.at(TODAY, 11), **home, success=True)
    lunch = world.send(
        "payment",
        world.at(TODAY, 12.5),
        **home,
        card=CREDIT_A,
        amount=10_000,
        merchant=Merchant(id="m-canteen", category="food"),
    )
    for decision in (without, stale, lunch):
        assert "reset_then_drain_unlike_own_past" not in rules_of(decision)
