"""Rulesets 2026.12.8 to 2027.1.1 (issue 11, fake customer service) on hand-made event
sequences.

A coached victim pays on their own phone, on their own network, and passes the SMS code
and a face check; the first transfer behind a code to a "safe account" is where the bank
can call back. The friction it costs honest customers is paid for by narrower rules: a
small first transfer after a new card is not held, a big first purchase on a new phone at
home is not asked for a face, and (2026.12.10) an everyday payment with a new card after a
password reset, from the customer's own phone, is left alone. Each rule has an event where
it must fire and a near twin where it must not, decided by the real engine with the
default catalog and ruleset (the customers of `test_default_behaviour_rules`: two weeks
of lunches).
"""

import pytest
from test_default_behaviour_rules import HOME_IP, TODAY, World, _payee, rules_of

from payguard.decision import Decision
from payguard.events import Card, Merchant

RULE = "coached_first_coded_payment"


@pytest.fixture
def world() -> World:
    return World()


# --- coached_first_coded_payment: the first coded transfer to a "safe account" -------------


def _coded_transfer(world: World, daily_fen: int, fen: int, *, code: bool = True) -> Decision:
    """A customer who pays `daily_fen` at lunch sends `fen` to an account they never paid,
    on their own phone at home, behind an SMS code (or without one)."""
    world.customer("u1", fen=daily_fen, card=Card(token="pan_debit_u1", kind="debit"))
    who = world.home("u1")
    t = world.at(TODAY, 16)
    if code:
        world.send("otp_send", t, **who, phone="tel_u1", method="sms")
        world.send("otp_verify", t + 30_000, **who, method="sms", success=True)
    return world.send("transfer", t + 60_000, **who, amount=fen, payee=_payee("safe"))


def test_the_first_coded_transfer_to_a_new_payee_far_above_habit_gets_a_call_back(
    world: World,
) -> None:
    decision = _coded_transfer(world, daily_fen=10_000, fen=250_000)
    assert RULE in rules_of(decision)
    assert decision.action == "challenge"
    assert "callback" in (decision.challenge or []) and "face" not in (decision.challenge or [])


def test_the_same_transfer_without_a_code_in_the_hour_is_left_alone(world: World) -> None:
    decision = _coded_transfer(world, daily_fen=10_000, fen=250_000, code=False)
    assert RULE not in rules_of(decision)


def test_a_transfer_above_habit_but_under_three_times_it_gets_a_call_back(world: World) -> None:
    """2,500 CNY from a customer whose payments are 1,000 CNY: under the caller's cap and
    under three times the customer's own p90, which 2026.12.8 let through."""
    decision = _coded_transfer(world, daily_fen=100_000, fen=250_000)
    assert RULE in rules_of(decision)


def test_a_customer_who_moves_that_much_is_left_alone(world: World) -> None:
    decision = _coded_transfer(world, daily_fen=300_000, fen=250_000)
    assert RULE not in rules_of(decision)


def test_a_small_verification_transfer_is_not_the_safe_account_transfer(world: World) -> None:
    decision = _coded_transfer(world, daily_fen=10_000, fen=50_000)
    assert RULE not in rules_of(decision)


def _coded_vouchers(world: World, daily_fen: int) -> Decision:
    """A customer who pays `daily_fen` at lunch buys a 2,500 CNY gift card on their own
    phone at home behind an SMS code."""
    world.customer("u1", fen=daily_fen, card=Card(token="pan_debit_u1", kind="debit"))
    who = world.home("u1")
    t = world.at(TODAY, 16)
    world.send("otp_send", t, **who, phone="tel_u1", method="sms")
    world.send("otp_verify", t + 30_000, **who, method="sms", success=True)
    gift = Merchant(id="m-gift", category="gift_card")
    card = Card(token="pan_debit_u1", kind="debit")
    return world.send("payment", t + 60_000, **who, card=card, amount=250_000, merchant=gift)


def test_vouchers_behind_the_first_code_far_above_habit_get_a_call_back(world: World) -> None:
    assert RULE in rules_of(_coded_vouchers(world, daily_fen=10_000))


def test_the_same_vouchers_from_a_customer_who_spends_like_that_are_left_alone(
    world: World,
) -> None:
    assert RULE not in rules_of(_coded_vouchers(world, daily_fen=300_000))


# --- cooling_off_new_payee: 2,000 CNY or more, not any unusual first transfer ---------------


def _after_new_card(world: World, fen: int) -> Decision:
    world.customer("u1")
    home = world.home("u1")
    world.send("card_bind", world.at(TODAY, 9), **home, card=Card(token="pan_new"))
    return world.send("transfer", world.at(TODAY, 12.5), **home, amount=fen, payee=_payee("pal"))


def test_a_first_transfer_of_a_few_hundred_after_a_new_card_is_not_held(world: World) -> None:
    """800 CNY to a new payee is unlike a customer who spends 100 a day, and was held."""
    decision = _after_new_card(world, fen=80_000)
    assert "cooling_off_new_payee" not in rules_of(decision)
    assert decision.action != "hold"


def test_a_first_transfer_that_matters_after_a_new_card_is_still_held(world: World) -> None:
    decision = _after_new_card(world, fen=300_000)
    assert "cooling_off_new_payee" in rules_of(decision)


# --- new_device_big_amount: a new device on a network the account does not know -------------


def _new_phone_purchase(world: World, ip: str) -> Decision:
    world.customer("u1")
    who = {"user_id": "u1", "device_id": "new-phone-u1", "ip": ip}
    return world.send(
        "payment",
        world.at(TODAY, 15),
        **who,
        card=Card(token="pan_debit_u1", kind="debit"),
        amount=600_000,
        merchant=Merchant(id="m-shop", category="ecommerce"),
    )


def test_a_big_purchase_from_a_new_device_on_a_new_network_asks_for_a_face(world: World) -> None:
    decision = _new_phone_purchase(world, ip="203.0.113.9")
    assert "new_device_big_amount" in rules_of(decision)


def test_a_big_purchase_on_a_new_phone_at_home_is_not_a_new_device_stop(world: World) -> None:
    decision = _new_phone_purchase(world, ip=HOME_IP)
    assert "new_device_big_amount" not in rules_of(decision)


# --- cooling_off_new_card: an everyday payment from a known device is left alone ------------


def _new_card_after_reset(world: World, device: str, fen: int) -> Decision:
    """A customer who pays 100 CNY at lunch resets the password, then pays with a card the
    account never used, from `device` on the home network."""
    world.customer("u1")
    home = world.home("u1")
    world.send("password_reset", world.at(TODAY, 9), **home)
    who = {**home, "device_id": device}
    return world.send(
        "payment",
        world.at(TODAY, 12.5),
        **who,
        card=Card(token="pan_new"),
        amount=fen,
        merchant=Merchant(id="m-canteen", category="food"),
    )


def test_lunch_with_a_new_card_on_the_own_phone_after_a_reset_is_left_alone(
    world: World,
) -> None:
    decision = _new_card_after_reset(world, "phone-u1", fen=10_000)
    assert "cooling_off_new_card" not in rules_of(decision)


def test_a_new_card_after_a_reset_on_a_new_device_still_needs_a_face(world: World) -> None:
    decision = _new_card_after_reset(world, "new-phone-u1", fen=10_000)
    assert "cooling_off_new_card" in rules_of(decision)


def test_a_new_card_after_a_reset_for_a_sizeable_amount_still_needs_a_face(world: World) -> None:
    decision = _new_card_after_reset(world, "phone-u1", fen=60_000)
    assert "cooling_off_new_card" in rules_of(decision)


# --- forwarding_money_out: a new network alone is a traveller, not a forwarded code ---------


def _pay_while_forwarding(world: World, device: str) -> Decision:
    """A customer who pays 100 CNY at lunch sets call forwarding (travelling), then pays
    lunch from `device` on a hotel network the account never used."""
    world.customer("u1")
    world.send("call_forward_set", world.at(TODAY, 8), user_id="u1", phone="tel_u1")
    who = {"user_id": "u1", "device_id": device, "ip": "198.51.100.7"}
    return world.send(
        "payment",
        world.at(TODAY, 12.5),
        **who,
        card=Card(token="pan_debit_u1", kind="debit"),
        amount=10_000,
        merchant=Merchant(id="m-canteen", category="food"),
    )


def test_lunch_on_the_own_phone_abroad_with_forwarding_set_is_left_alone(world: World) -> None:
    assert "forwarding_money_out" not in rules_of(_pay_while_forwarding(world, "phone-u1"))


def test_money_from_a_new_device_with_forwarding_set_is_still_challenged(world: World) -> None:
    assert "forwarding_money_out" in rules_of(_pay_while_forwarding(world, "new-phone-u1"))


# --- 2026.12.21: code_then_money_fresh_device, the drip's first payment ---------------------


def _first_payment_after_code_login(
    world: World, ip: str, *, fen: int = 80_000, code: bool = True
) -> Decision:
    """A customer who pays 100 CNY at lunch; a device the account never used logs in with an
    SMS code (read out to a caller) from `ip`, and half an hour later pays `fen` for an
    ordinary online order: no code for the payment itself, an amount under nothing."""
    world.customer("u1")
    who = {"user_id": "u1", "device_id": "agent-phone", "ip": ip}
    t = world.at(TODAY, 15)
    if code:
        world.send("otp_send", t, **who, phone="tel_u1", method="sms")
        world.send("otp_verify", t + 40_000, **who, method="sms", success=True)
    world.send("login", t + 45_000, **who, method="sms" if code else "password", success=True)
    shop = Merchant(id="m-shop", category="ecommerce")
    card = Card(token="pan_debit_u1", kind="debit")
    return world.send("payment", t + 30 * 60_000, **who, card=card, amount=fen, merchant=shop)


def test_the_first_payment_of_a_device_let_in_by_a_code_is_challenged(world: World) -> None:
    decision = _first_payment_after_code_login(world, ip="203.0.113.77")
    assert "code_then_money_fresh_device" in rules_of(decision)
    assert decision.action == "challenge"
    assert "sms_otp" not in (decision.challenge or [])


def test_a_new_phone_on_the_home_network_is_not_a_device_let_in_by_a_code(world: World) -> None:
    decision = _first_payment_after_code_login(world, ip=HOME_IP)
    assert "code_then_money_fresh_device" not in rules_of(decision)


def test_a_new_device_that_logged_in_without_a_code_is_left_to_other_rules(world: World) -> None:
    decision = _first_payment_after_code_login(world, ip="203.0.113.77", code=False)
    assert "code_then_money_fresh_device" not in rules_of(decision)


def test_a_small_payment_from_a_device_let_in_by_a_code_is_left_alone(world: World) -> None:
    decision = _first_payment_after_code_login(world, ip="203.0.113.77", fen=5_000)
    assert "code_then_money_fresh_device" not in rules_of(decision)


# --- 2026.12.21: coached_third_code_cash_like, a voucher run one code at a time -------------


def _voucher_after_codes(world: World, codes: int, category: str = "gift_card") -> Decision:
    """A customer who pays 100 CNY at lunch, on their own phone at home, passes `codes` SMS
    codes within forty minutes (each for a small voucher) and then buys one more for 300
    CNY in `category`."""
    world.customer("u1")
    who = world.home("u1")
    card = Card(token="pan_debit_u1", kind="debit")
    t = world.at(TODAY, 16)
    for i in range(codes):
        at = t + i * 12 * 60_000
        world.send("otp_send", at, **who, phone="tel_u1", method="sms")
        world.send("otp_verify", at + 30_000, **who, method="sms", success=True)
        if i < codes - 1:
            gift = Merchant(id=f"m-gift-{i}", category="gift_card")
            world.send("payment", at + 40_000, **who, card=card, amount=20_000, merchant=gift)
    merchant = Merchant(id="m-last", category=category)
    last = t + (codes - 1) * 12 * 60_000 + 40_000
    return world.send("payment", last, **who, card=card, amount=30_000, merchant=merchant)


def test_vouchers_on_the_third_code_in_an_hour_get_a_call_back(world: World) -> None:
    decision = _voucher_after_codes(world, codes=3)
    assert "coached_third_code_cash_like" in rules_of(decision)
    assert "callback" in (decision.challenge or []) and "face" not in (decision.challenge or [])


def test_vouchers_on_the_second_code_are_left_alone(world: World) -> None:
    assert "coached_third_code_cash_like" not in rules_of(_voucher_after_codes(world, codes=2))


def test_dinner_on_the_third_code_is_not_a_voucher_run(world: World) -> None:
    decision = _voucher_after_codes(world, codes=3, category="food")
    assert "coached_third_code_cash_like" not in rules_of(decision)


# --- 2026.12.21: fresh_device_sms_money from 300 CNY ----------------------------------------


def _top_up_on_a_new_phone_on_the_road(world: World, fen: int) -> Decision:
    """A customer who pays 100 CNY at lunch logs in on a new phone from a network the
    account never used, with an SMS code, and tops up a phone for `fen` a minute later."""
    world.customer("u1")
    who = {"user_id": "u1", "device_id": "new-phone-u1", "ip": "198.51.100.23"}
    t = world.at(TODAY, 18)
    world.send("otp_send", t, **who, phone="tel_u1", method="sms")
    world.send("otp_verify", t + 30_000, **who, method="sms", success=True)
    world.send("login", t + 35_000, **who, method="sms", success=True)
    topup = Merchant(id="m-topup", category="mobile_topup")
    card = Card(token="pan_debit_u1", kind="debit")
    return world.send("payment", t + 90_000, **who, card=card, amount=fen, merchant=topup)


def test_a_small_top_up_on_a_new_phone_on_the_road_is_not_a_code_read_aloud(
    world: World,
) -> None:
    decision = _top_up_on_a_new_phone_on_the_road(world, fen=3_000)
    assert "fresh_device_sms_money" not in rules_of(decision)
    assert "code_then_money_fresh_device" not in rules_of(decision)


def test_a_top_up_that_matters_on_a_new_phone_on_the_road_still_needs_a_face(
    world: World,
) -> None:
    decision = _top_up_on_a_new_phone_on_the_road(world, fen=50_000)
    assert "fresh_device_sms_money" in rules_of(decision)


# --- 2026.12.30: the first coded transfer to a new payee, far above a thin history ---------

THIN = "coded_transfer_new_payee_far_above_own"


def _thin_customer(world: World, lunches: int, fen: int) -> None:
    """An account opened long ago that paid `fen` at lunch on `lunches` days (fewer than the
    five settled payments coached_first_coded_payment asks for)."""
    world.send("register", world.at(0, 9) - 400 * 86_400_000, **world.home("u1"))
    for day in range(lunches):
        world.send(
            "payment",
            world.at(TODAY - lunches + day, 12.5),
            **world.home("u1"),
            card=Card(token="pan_debit_u1", kind="debit"),
            amount=fen,
            merchant=Merchant(id="m-canteen", category="food"),
        )


def _first_safe_account_transfer(
    world: World,
    *,
    lunch_fen: int = 10_000,
    fen: int = 150_000,
    code_age_s: int = 30,
    paid_before: bool = False,
) -> Decision:
    """A customer with three lunches of `lunch_fen` sends `fen` to an account on their own
    phone at home, confirming with an SMS code sent `code_age_s` seconds earlier; with
    `paid_before`, they first paid that account 200 CNY the day before."""
    _thin_customer(world, lunches=3, fen=lunch_fen)
    who = world.home("u1")
    card = Card(token="pan_debit_u1", kind="debit")
    if paid_before:
        world.send(
            "transfer",
            world.at(TODAY - 1, 14),
            **who,
            card=card,
            amount=20_000,
            payee=_payee("safe"),
        )
    t = world.at(TODAY, 16)
    world.send("otp_send", t - code_age_s * 1000, **who, phone="tel_u1", method="sms")
    world.send("otp_verify", t - 5_000, **who, method="sms", success=True)
    return world.send("transfer", t, **who, card=card, amount=fen, payee=_payee("safe"))


def _asks_call_back(decision: Decision, rule: str) -> None:
    """`rule` hit and the customer is asked what a coached victim cannot pass alone: the
    bank's call-back or a hardware token, not the code they read aloud."""
    assert rule in rules_of(decision)
    assert decision.action == "challenge"
    assert set(decision.challenge or []) == {"callback", "hardware_token"}


def test_a_thin_history_first_coded_transfer_far_above_habit_gets_a_call_back(
    world: World,
) -> None:
    decision = _first_safe_account_transfer(world)
    assert RULE not in rules_of(decision)  # five settled payments are not there yet
    _asks_call_back(decision, THIN)


def test_a_code_from_minutes_ago_is_not_this_transfers_code(world: World) -> None:
    """A login code five minutes earlier: the transfer itself asked for none."""
    assert THIN not in rules_of(_first_safe_account_transfer(world, code_age_s=300))


def test_a_transfer_within_three_times_the_customers_own_amounts_is_left_alone(
    world: World,
) -> None:
    assert THIN not in rules_of(_first_safe_account_transfer(world, lunch_fen=60_000))


def test_a_coded_transfer_under_1000_cny_is_left_alone(world: World) -> None:
    assert THIN not in rules_of(_first_safe_account_transfer(world, fen=90_000))


def test_a_payee_first_paid_yesterday_is_not_a_new_payee(world: World) -> None:
    assert THIN not in rules_of(_first_safe_account_transfer(world, paid_before=True))


def test_beside_the_other_call_back_rules_it_does_not_tip_the_transfer_into_review(
    world: World,
) -> None:
    """A customer with two weeks of lunches sends 6,000 CNY to a new payee behind a fresh
    code: coached_first_coded_payment and new_payee_large_unlike_own_past ask for the
    call-back too. Score 0: the three together stay a challenge (a review would hold the
    account's next money for an hour), not 90."""
    decision = _coded_transfer(world, daily_fen=10_000, fen=600_000)
    assert {THIN, RULE, "new_payee_large_unlike_own_past"} <= rules_of(decision)
    assert decision.action == "challenge"


# --- 2027.1.1: the remote-controlled phone's orders ----------------------------------------

CASH = "coded_cash_like_far_above_own"
PLATFORM = "payment_platform_second_code_hour_adds_up"


def _coded_order(
    world: World,
    *,
    lunch_fen: int = 10_000,
    fen: int = 250_000,
    category: str = "gift_card",
    code_age_s: int = 30,
    earlier_fen: int = 0,
    weeks: bool = False,
) -> Decision:
    """A customer with three lunches of `lunch_fen` (with `weeks`, two weeks of them) pays
    `fen` at a `category` shop on their own phone at home, confirming with an SMS code sent
    `code_age_s` seconds earlier; with `earlier_fen`, a shop order of that much went out an
    hour and a half before."""
    if weeks:
        world.customer("u1", fen=lunch_fen, card=Card(token="pan_debit_u1", kind="debit"))
    else:
        _thin_customer(world, lunches=3, fen=lunch_fen)
    who = world.home("u1")
    card = Card(token="pan_debit_u1", kind="debit")
    t = world.at(TODAY, 16)
    if earlier_fen:
        shop = Merchant(id="m-shop", category="ecommerce")
        world.send("payment", t - 90 * 60_000, **who, card=card, amount=earlier_fen, merchant=shop)
    world.send("otp_send", t - code_age_s * 1000, **who, phone="tel_u1", method="sms")
    world.send("otp_verify", t - 5_000, **who, method="sms", success=True)
    merchant = Merchant(id=f"m-{category}", category=category)
    return world.send("payment", t, **who, card=card, amount=fen, merchant=merchant)


def test_a_coded_gift_card_far_above_a_thin_history_gets_a_call_back(world: World) -> None:
    decision = _coded_order(world)
    assert RULE not in rules_of(decision)  # five settled payments are not there yet
    _asks_call_back(decision, CASH)


def test_a_gift_card_under_three_times_the_customers_own_amounts_is_left_alone(
    world: World,
) -> None:
    assert CASH not in rules_of(_coded_order(world, lunch_fen=100_000))


def test_a_gift_card_bought_on_a_code_from_minutes_ago_is_left_alone(world: World) -> None:
    assert CASH not in rules_of(_coded_order(world, code_age_s=300))


def test_a_coded_shop_order_of_that_size_is_not_easily_resold_goods(world: World) -> None:
    assert CASH not in rules_of(_coded_order(world, category="ecommerce"))


def test_a_gift_card_under_1000_cny_is_left_alone_even_when_the_day_adds_up(
    world: World,
) -> None:
    """Two weeks of 100 CNY lunches, a 1,500 CNY shop order, then 900 CNY of vouchers:
    today adds up to 2,400 CNY and the voucher is over three times the lunches, but under
    the rule's floor."""
    decision = _coded_order(world, fen=90_000, earlier_fen=150_000, weeks=True)
    assert CASH not in rules_of(decision)


def test_a_1200_cny_gift_card_counts_when_the_day_adds_up_to_2000(world: World) -> None:
    """Two weeks of 100 CNY lunches: coached_first_coded_payment waits for 2,000 CNY of such
    goods today; this rule takes the day's money out, here a 1,000 CNY shop order first."""
    decision = _coded_order(world, fen=120_000, earlier_fen=100_000, weeks=True)
    assert CASH in rules_of(decision)
    assert RULE not in rules_of(decision)
    alone = _coded_order(World(), fen=120_000, weeks=True)  # the day: 1,200 CNY
    assert CASH not in rules_of(alone)


def _platform_orders(
    world: World, *, first_fen: int = 200_000, fen: int = 300_000, codes: int = 2
) -> Decision:
    """A customer with two weeks of 100 CNY lunches places a `first_fen` order at a
    payment platform on their own phone, then minutes later a `fen` one at another; the
    first `codes - 1` orders and the last each come behind an SMS code."""
    world.customer("u1", fen=10_000, card=Card(token="pan_debit_u1", kind="debit"))
    who = world.home("u1")
    card = Card(token="pan_debit_u1", kind="debit")
    t = world.at(TODAY, 16)
    for i in range(codes - 1):
        world.send("otp_send", t + i * 20_000, **who, phone="tel_u1", method="sms")
        world.send("otp_verify", t + i * 20_000 + 10_000, **who, method="sms", success=True)
    platform = Merchant(id="m-pay-a", category="transfer_service")
    world.send("payment", t + 60_000, **who, card=card, amount=first_fen, merchant=platform)
    t += 5 * 60_000
    world.send("otp_send", t, **who, phone="tel_u1", method="sms")
    world.send("otp_verify", t + 10_000, **who, method="sms", success=True)
    other = Merchant(id="m-pay-b", category="transfer_service")
    return world.send("payment", t + 20_000, **who, card=card, amount=fen, merchant=other)


def test_a_second_coded_platform_order_adding_up_to_5000_gets_a_call_back(
    world: World,
) -> None:
    _asks_call_back(_platform_orders(world), PLATFORM)


def test_a_platform_order_on_the_hours_first_code_is_left_alone(world: World) -> None:
    assert PLATFORM not in rules_of(_platform_orders(world, codes=1))


def test_a_small_purchase_before_a_large_platform_order_is_not_an_order_run(
    world: World,
) -> None:
    """60 CNY, then 5,000 CNY: the hour adds up, but under 1,000 CNY had gone before."""
    assert PLATFORM not in rules_of(_platform_orders(world, first_fen=6_000, fen=500_000))


def test_two_coded_platform_orders_under_5000_cny_are_left_alone(world: World) -> None:
    assert PLATFORM not in rules_of(_platform_orders(world, first_fen=200_000, fen=250_000))
