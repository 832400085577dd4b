"""Legitimate customers: account set-up, daily sessions, and attack look-alikes.

The generator reproduces ordinary quick-payment behaviour (sessions following a daily,
weekly and payday rhythm; log-normal amounts per merchant category with Zipf-popular
merchants; SMS OTP on card binding and larger payments) and, at small documented rates, the
legitimate behaviour that fraud rules confuse with attacks (`LOOKALIKES`): phones replaced
at a counter or lost and found, travel with roaming and call forwarding, new handsets,
shared family devices, two or three cards bound in an hour, one-off big purchases,
shopkeepers paying wholesale merchants round amounts, business users with many payees,
night-shift workers, password resets, gold churn and night-time merchant auto-debits.
"""

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from itertools import accumulate

from payguard.sim.population import (
    CAT_WEIGHTS_ADULT,
    CAT_WEIGHTS_STUDENT,
    CATEGORIES,
    RHYTHM_NIGHT_SHIFT,
    Body,
    User,
    amount_for,
    city_ip,
    lognormal_fen,
    make_device,
    make_name,
    make_pan,
    make_user,
    pick_city,
    share_devices,
)
from payguard.sim.world import DAY, HOUR, MINUTE, World, base, carrier, otp_pair, yuan

_CAT_CUM_ADULT = list(accumulate(CAT_WEIGHTS_ADULT))
_CAT_CUM_STUDENT = list(accumulate(CAT_WEIGHTS_STUDENT))
_FUNDS: tuple[Body, ...] = tuple({"id": f"fund-{i:03d}", "category": "other"} for i in range(12))
_GOLD: tuple[Body, ...] = tuple(
    {"id": f"gold-{i:02d}", "category": "precious_metal"} for i in range(3)
)
_LENDERS: tuple[Body, ...] = tuple({"id": f"lender-{i:02d}", "category": "loan"} for i in range(5))
_REPORT_REASONS = ("unauthorized", "unauthorized", "unrecognized", "not_received")


def build_population(w: World) -> None:
    """Create users: most registered long before the window, a few during it."""
    cfg, rng = w.cfg, w.rng
    for _ in range(cfg.users):
        if rng.random() < cfg.new_user_share:
            day = rng.randrange(cfg.days)
            reg_ts = w.at_hour(day, 8, 23)
        else:
            age_days = 30 + min(3650.0, 2.718281828 ** rng.gauss(6.0, 0.9))
            reg_ts = w.start_ts - int(age_days * DAY) + rng.randrange(8 * HOUR, 23 * HOUR)
        w.users.append(make_user(rng, w.new_uid(), reg_ts, cfg.activity))
    share_devices(rng, w.users, 0.02 * cfg.lookalike_rate)


def generate_legit(w: World) -> Counter[str]:
    """All legitimate traffic: set-up history, onboarding, sessions, look-alikes.

    Returns customers per look-alike behaviour (onboarding card bursts included)."""
    bursts = 0
    for user in w.users:
        if user.reg_ts >= w.start_ts:
            bursts += onboard(w, user)
        elif w.cfg.history:
            history(w, user)
    seen = lookalikes(w)
    if bursts:
        seen["onboarding_cards"] = bursts
    for user in w.users:
        sessions(w, user)
        monthly(w, user)
    return seen


def _home(user: User) -> Body:
    return base(user.uid, user.devices[0], user.ips[0], user.city)


def bind_card(w: World, user: User, t: int, who: Body, card: Body) -> int:
    """Quick-payment card binding: the bank sends an SMS OTP to the reserved phone."""
    t, _ = otp_pair(w, t, who, user.phone, "card_bind")
    t += w.rng.randint(1, 6)
    w.em.emit(t, {"type": "card_bind", **who, "card": card, "phone": user.phone})
    return t


def register(w: World, user: User, t: int, who: Body) -> int:
    """register + kyc_verify (ID card or face; sometimes a failed first face attempt)."""
    rng, em = w.rng, w.em
    t, _ = otp_pair(w, t, who, user.phone, "register")
    em.emit(t + 2, {"type": "register", **who, "phone": user.phone})
    t += rng.randint(30, 400)
    method = "face" if rng.random() < 0.6 else "id_card"
    if method == "face" and rng.random() < 0.08:
        em.emit(
            t,
            {
                "type": "kyc_verify",
                **who,
                "id_number": user.id_number,
                "method": "face",
                "success": False,
            },
        )
        t += rng.randint(20, 120)
    em.emit(
        t,
        {
            "type": "kyc_verify",
            **who,
            "id_number": user.id_number,
            "method": method,
            "success": True,
        },
    )
    return t


def history(w: World, user: User) -> None:
    """Set-up events of an older account at their real dates, so account age is visible."""
    rng = w.rng
    who = _home(user)
    t = register(w, user, user.reg_ts, who)
    t = bind_card(w, user, t + rng.randint(60, 900), who, user.cards[0])
    span = max(DAY, w.start_ts - t - DAY)
    for card in user.cards[1:]:
        bind_card(w, user, t + rng.randrange(span), who, card)


def onboard(w: World, user: User) -> bool:
    """A customer signing up in the window; some bind two or three cards within an hour
    (look-alike of a card-bind burst). Returns whether this one did."""
    rng = w.rng
    who = _home(user)
    t = register(w, user, user.reg_ts, who)
    burst = rng.random() < 0.15 * w.cfg.lookalike_rate
    if burst:
        want = rng.randint(2, 3)
        while len(user.cards) < want:
            user.cards.append(make_pan(rng, credit=rng.random() < 0.3))
    t = bind_card(w, user, t + rng.randint(60, 900), who, user.cards[0])
    for card in user.cards[1:]:
        if burst:
            t = bind_card(w, user, t + rng.randint(30, 1200), who, card)
        else:
            bind_card(w, user, t + rng.randint(HOUR, 3 * DAY), who, card)
    return burst


def sessions(w: World, user: User) -> None:
    """Sessions per user: Poisson count, times from the user's rhythm."""
    lo = max(w.start_ts, user.reg_ts + 20 * MINUTE)
    for _ in range(w.poisson(user.rate * w.cfg.days)):
        t = w.session_time(user)
        if t >= lo:
            session(w, user, t)


def _where(w: World, user: User, t: int) -> Body:
    rng = w.rng
    devices = user.devices
    dev = devices[0] if len(devices) == 1 or rng.random() < 0.75 else devices[1]
    if user.new_device is not None and t >= user.switch_ts:
        dev = user.new_device
    ip = user.ips[0] if rng.random() < 0.6 else user.ips[1]
    city = user.city
    trip = user.travel
    if trip is not None and trip[0] <= t < trip[1]:
        city, ip = trip[2], trip[3]
    return base(user.uid, dev, ip, city)


def session(w: World, user: User, t: int) -> None:
    """One app session: maybe a login, one to three actions, rarely an explicit logout."""
    rng = w.rng
    who = _where(w, user, t)
    if rng.random() < 0.5:
        t = login(w, user, t, who)
    n = 1 if rng.random() < 0.65 else (2 if rng.random() < 0.7 else 3)
    for _ in range(n):
        t += rng.randint(5, 240)
        r = rng.random()
        if r < 0.82:
            t = payment(w, user, t, who)
        elif r < 0.9 and user.payees:
            t = transfer(w, user, t, who)
        elif r < 0.93:
            t = withdrawal(w, user, t, who)
        elif r < 0.96 and user.invests:
            t = invest(w, user, t, who)
        elif r < 0.965:
            w.em.emit(t, {"type": "profile_change", **who, "attrs": {"field": "address"}})
        else:
            t = payment(w, user, t, who)
    if rng.random() < 0.12:
        w.em.emit(t + rng.randint(5, 300), {"type": "logout", **who})


def login(w: World, user: User, t: int, who: Body) -> int:
    """Password, face or SMS login; ~4% of password logins start with a typo."""
    rng, em = w.rng, w.em
    r = rng.random()
    if r < 0.2:
        t, _ = otp_pair(w, t, who, user.phone, "login")
        method = "sms"
    else:
        method = "password" if r < 0.75 else "face"
        if method == "password" and rng.random() < 0.04:
            em.emit(t, {"type": "login", **who, "method": method, "success": False})
            t += rng.randint(6, 40)
    em.emit(t, {"type": "login", **who, "method": method, "success": True})
    return t


def _card(w: World, user: User, t: int) -> Body:
    late = user.late_card
    if late is not None and t >= late[0] and w.rng.random() < 0.4:
        return late[1]
    cards = user.cards
    return cards[0] if len(cards) == 1 or w.rng.random() < 0.6 else w.rng.choice(cards)


def payment(
    w: World, user: User, t: int, who: Body, cat: str | None = None, fen: int | None = None
) -> int:
    """A merchant payment; SMS OTP step-up above 2,000 yuan and at random (bank policy)."""
    rng, em = w.rng, w.em
    if cat is None:
        cum = _CAT_CUM_STUDENT if user.student else _CAT_CUM_ADULT
        cat = rng.choices(CATEGORIES, cum_weights=cum)[0]
    merchant = w.merchants.pick(rng, cat)
    amount = amount_for(rng, cat) if fen is None else fen
    card = _card(w, user, t)
    if amount >= 200_000 or rng.random() < 0.07:
        t, _ = otp_pair(w, t, who, user.phone, "payment")
        t += rng.randint(1, 5)
    seq = em.emit(
        t, {"type": "payment", **who, "card": card, "amount": yuan(amount), "merchant": merchant}
    )
    if cat == "ecommerce" and rng.random() < 0.04:
        refund(w, user, seq, t, card, merchant, amount)
    if rng.random() < w.cfg.false_report_rate:
        false_report(w, user, seq, t, card, amount)
    return t


def refund(w: World, user: User, ref: int, t: int, card: Body, merchant: Body, amount: int) -> None:
    """A merchant-initiated refund days later, usually in full."""
    rng = w.rng
    t += rng.randint(2 * HOUR, 8 * DAY)
    if rng.random() < 0.3:
        amount = max(100, amount * rng.randint(20, 90) // 100)
    who = base(user.uid, None, w.merchants.api_ip[merchant["id"]], None)
    body = {"type": "refund", **who, "card": card, "amount": yuan(amount), "merchant": merchant}
    w.em.emit(t, w.em.ref(body, ref))


def false_report(w: World, user: User, ref: int, t: int, card: Body, amount: int) -> None:
    """A customer disputing a payment they actually made (friendly fraud, forgotten order)."""
    rng = w.rng
    t += rng.randint(2 * HOUR, 12 * DAY)
    if t >= w.end_ts:
        return
    body = {"type": "fraud_report", **_home(user), "attrs": {"reason": rng.choice(_REPORT_REASONS)}}
    w.em.emit(t, w.em.ref(body, ref))
    if rng.random() < 0.4:
        cb = {"type": "chargeback", "user_id": user.uid, "card": card, "amount": yuan(amount)}
        w.em.emit(t + rng.randint(DAY, 5 * DAY), w.em.ref(cb, ref))


def transfer(w: World, user: User, t: int, who: Body) -> int:
    """A transfer to one of the user's recurring payees (family, landlord)."""
    rng = w.rng
    amount = lognormal_fen(rng, 50_000, 1.0)
    if amount >= 500_000:
        t, _ = otp_pair(w, t, who, user.phone, "transfer")
        t += rng.randint(1, 5)
    w.em.emit(
        t,
        {
            "type": "transfer",
            **who,
            "card": user.cards[0],
            "amount": yuan(amount),
            "payee": rng.choice(user.payees),
        },
    )
    return t


def withdrawal(w: World, user: User, t: int, who: Body) -> int:
    amount = lognormal_fen(w.rng, 80_000, 0.8)
    w.em.emit(t, {"type": "withdrawal", **who, "card": user.cards[0], "amount": yuan(amount)})
    return t


def invest(w: World, user: User, t: int, who: Body) -> int:
    """Fund or gold savings; gold savers buy and redeem often (a churn look-alike)."""
    rng = w.rng
    product = rng.choice(_GOLD) if user.invests == 2 else rng.choice(_FUNDS)
    kind = "investment_buy" if rng.random() < 0.6 else "investment_redeem"
    amount = lognormal_fen(rng, 300_000, 0.8)
    w.em.emit(
        t, {"type": kind, **who, "card": user.cards[0], "amount": yuan(amount), "merchant": product}
    )
    return t


def monthly(w: World, user: User) -> None:
    """Night-time utility auto-debits over the API, and loans with monthly repayments."""
    rng, cfg = w.rng, w.cfg
    if user.autopay:
        merchant = w.merchants.pick(rng, "utilities")
        ip = w.merchants.api_ip[merchant["id"]]
        who = base(user.uid, None, ip, None)
        dom = rng.randint(1, 28)
        for d in range(cfg.days):
            if (cfg.start + timedelta(days=d)).day == dom and rng.random() < 0.95:
                t = w.at_hour(d, 1, 5)
                w.em.emit(
                    t,
                    {
                        "type": "payment",
                        **who,
                        "card": user.cards[0],
                        "amount": yuan(amount_for(rng, "utilities")),
                        "merchant": merchant,
                    },
                )
    if user.borrows and rng.random() < 0.5:
        t = w.session_time(user)
        if t > user.reg_ts + 7 * DAY:
            loan(w, user, t, _where(w, user, t), rng.randint(5, 50) * 1_000_00)


def loan(w: World, user: User, t: int, who: Body, amount: int) -> int:
    """loan_apply then loan_disburse minutes later onto the user's card."""
    lender = w.rng.choice(_LENDERS)
    seq = w.em.emit(t, {"type": "loan_apply", **who, "amount": yuan(amount), "merchant": lender})
    t += w.rng.randint(2 * MINUTE, 90 * MINUTE)
    body = {
        "type": "loan_disburse",
        **who,
        "amount": yuan(amount),
        "merchant": lender,
        "card": user.cards[0],
    }
    w.em.emit(t, w.em.ref(body, seq))
    return t


LOOKALIKES: tuple[tuple[str, float], ...] = (
    ("counter_sim_swap", 0.003),
    ("lost_phone", 0.003),
    ("lost_and_found", 0.003),
    ("travel", 0.012),
    ("travel_forwarding", 0.003),
    ("new_handset", 0.005),
    ("password_reset", 0.004),
    ("big_purchase", 0.004),
    ("big_purchase_new_card", 0.002),
    ("late_card", 0.008),
    ("wholesale_buyer", 0.003),
    ("business_payees", 0.003),
    ("night_worker", 0.005),
    ("call_forwarding", 0.002),
    ("sms_forwarding", 0.001),
)
"""Look-alike behaviour -> share of customers showing it over 30 days (x lookalike_rate,
scaled by days / 30); about 6 % of customers in total, plus shared family devices (~2 %)
and new customers binding two or three cards within an hour (15 % of sign-ups)."""


def lookalikes(w: World) -> Counter[str]:
    """Legitimate behaviour that resembles the attack chains, each at a small rate.

    At most one per customer; returns customers per behaviour."""
    rng, users = w.rng, w.users
    scale = w.cfg.lookalike_rate * w.cfg.days / 30
    seen: Counter[str] = Counter()
    if scale <= 0:
        return seen
    cum = list(accumulate(rate for _, rate in LOOKALIKES))
    wholesale = w.merchants.by_cat["other"][-max(2, len(w.merchants.by_cat["other"]) // 20) :]
    for user in users:
        r = rng.random() / scale
        if r >= cum[-1]:
            continue
        kind = next(name for (name, _), edge in zip(LOOKALIKES, cum, strict=True) if r < edge)
        seen[kind] += 1
        if kind == "wholesale_buyer":
            wholesale_buyer(w, user, rng.choice(wholesale))
        else:
            _LOOKALIKE_FNS[kind](w, user)
    return seen


def _window_time(w: World, user: User) -> int:
    return max(w.session_time(user), user.reg_ts + HOUR)


def lost_phone(w: World, user: User) -> None:
    """Lost phone: maybe suspend, SIM replaced at the carrier, password reset, new device."""
    rng = w.rng
    t = _window_time(w, user)
    if rng.random() < 0.5:
        carrier(w, t, "line_suspend", user.phone)
        t += rng.randint(2 * HOUR, 30 * HOUR)
    carrier(w, t, "sim_swap", user.phone)
    if rng.random() < 0.5:
        carrier(w, t + rng.randint(60, 600), "line_resume", user.phone)
    t += rng.randint(20 * MINUTE, 6 * HOUR)
    user.new_device = make_device(rng)
    user.switch_ts = t
    who = base(user.uid, user.new_device, user.ips[1], user.city)
    password_reset(w, user, t, who)


def password_reset(w: World, user: User, t: int | None = None, who: Body | None = None) -> None:
    """Forgotten password: SMS code, reset, then an ordinary login."""
    rng = w.rng
    if t is None:
        t = _window_time(w, user)
    if who is None:
        who = _where(w, user, t)
    t, _ = otp_pair(w, t, who, user.phone, "password_reset")
    w.em.emit(t + 3, {"type": "password_reset", **who, "method": "sms", "success": True})
    t += rng.randint(20, 200)
    w.em.emit(t, {"type": "login", **who, "method": "password", "success": True})


def travel(w: World, user: User) -> None:
    """A 2-7 day trip: sessions meanwhile come from another city and a hotel/mobile IP."""
    rng = w.rng
    t = _window_time(w, user)
    city = pick_city(rng, other_than=user.city)
    user.travel = (t, t + rng.randint(2, 7) * DAY, city, city_ip(rng, city))


def big_purchase_new_card(w: World, user: User) -> None:
    """A fresh card bound and used within the hour for a large purchase (appliance, trip)."""
    rng = w.rng
    t = _window_time(w, user)
    who = _where(w, user, t)
    card = make_pan(rng, credit=rng.random() < 0.5)
    t = bind_card(w, user, t, who, card)
    user.late_card = (t, card)
    cat = rng.choice(("ecommerce", "travel", "precious_metal"))
    fen = rng.randint(80, 300) * 100_00 - rng.choice((0, 0, 100, 1_00))
    payment(w, user, t + rng.randint(5 * MINUTE, HOUR), who, cat, fen)


def late_card(w: World, user: User) -> None:
    """A card bound mid-window, then used now and then."""
    rng = w.rng
    t = _window_time(w, user)
    card = make_pan(rng, credit=rng.random() < 0.4)
    user.late_card = (bind_card(w, user, t, _where(w, user, t), card), card)


def counter_sim_swap(w: World, user: User) -> None:
    """Phone replaced at a carrier counter: sim_swap, then the owner on a new handset by SMS."""
    rng = w.rng
    t = _window_time(w, user)
    carrier(w, t, "sim_swap", user.phone)
    t += rng.randint(10 * MINUTE, 2 * DAY)
    _switch_handset(w, user, t, sms_login=True)


def lost_and_found(w: World, user: User) -> None:
    """Phone lost and found: a loss report undone once or twice, hours apart."""
    rng = w.rng
    t = _window_time(w, user)
    for _ in range(1 if rng.random() < 0.75 else 2):
        carrier(w, t, "line_suspend", user.phone)
        t += rng.randint(20 * MINUTE, 2 * DAY)
        carrier(w, t, "line_resume", user.phone)
        t += rng.randint(HOUR, 3 * DAY)


def travel_forwarding(w: World, user: User) -> None:
    """A trip with roaming: calls (and sometimes SMS) forwarded to a local number."""
    travel(w, user)
    assert user.travel is not None
    t = user.travel[0] - w.rng.randint(0, 6 * HOUR)
    carrier(w, t, "call_forward_set", user.phone)
    if w.rng.random() < 0.3:
        carrier(w, t + w.rng.randint(60, HOUR), "sms_forward_set", user.phone)


def new_handset(w: World, user: User) -> None:
    """A new phone (same SIM): logins and payments move to an unknown device."""
    _switch_handset(w, user, _window_time(w, user), sms_login=w.rng.random() < 0.6)


def _switch_handset(w: World, user: User, t: int, sms_login: bool) -> None:
    rng = w.rng
    user.new_device = make_device(rng)
    user.switch_ts = t
    who = base(user.uid, user.new_device, user.ips[rng.randrange(2)], user.city)
    if sms_login:
        t, _ = otp_pair(w, t, who, user.phone, "login")
        w.em.emit(t + 2, {"type": "login", **who, "method": "sms", "success": True})
    else:
        login(w, user, t, who)
    if rng.random() < 0.5:
        payment(w, user, t + rng.randint(MINUTE, 3 * HOUR), who)


def big_purchase(w: World, user: User) -> None:
    """A one-off big purchase on a card the customer has had for years (appliance, trip)."""
    rng = w.rng
    t = _window_time(w, user)
    cat = rng.choice(("ecommerce", "travel", "precious_metal", "other"))
    fen = rng.randint(6_000_00, 45_000_00)
    fen = fen - fen % 100_00 if rng.random() < 0.5 else fen
    payment(w, user, t, _where(w, user, t), cat, fen)


def wholesale_buyer(w: World, user: User, merchant: Body) -> None:
    """A shopkeeper restocking at a small wholesale merchant whose tickets are round."""
    rng = w.rng
    scale = rng.randint(5, 200) * 100_00
    for _ in range(rng.randint(2, 8)):
        t = _window_time(w, user)
        who = _where(w, user, t)
        fen = max(100_00, int(scale * rng.uniform(0.5, 1.5)) // 100_00 * 100_00)
        if fen >= 200_000:
            t, _ = otp_pair(w, t, who, user.phone, "payment")
        body = {"type": "payment", **who, "card": _card(w, user, t), "merchant": merchant}
        w.em.emit(t + 2, {**body, "amount": yuan(fen)})


def business_payees(w: World, user: User) -> None:
    """A small-business owner paying many suppliers and staff, some for the first time."""
    rng = w.rng
    user.payees = [
        {"id": f"p{rng.getrandbits(48):012x}", "card": make_pan(rng, False), "name": make_name(rng)}
        for _ in range(rng.randint(8, 30))
    ]
    for _ in range(rng.randint(5, 25)):
        t = _window_time(w, user)
        transfer(w, user, t, _where(w, user, t))


def night_worker(w: World, user: User) -> None:
    """A night-shift worker: the whole daily rhythm moves to 22:00-07:00."""
    user.rhythm = RHYTHM_NIGHT_SHIFT


def _call_forwarding(w: World, user: User) -> None:
    carrier(w, _window_time(w, user), "call_forward_set", user.phone)


def _sms_forwarding(w: World, user: User) -> None:
    carrier(w, _window_time(w, user), "sms_forward_set", user.phone)


_LOOKALIKE_FNS: dict[str, Callable[[World, User], None]] = {
    "counter_sim_swap": counter_sim_swap,
    "lost_phone": lost_phone,
    "lost_and_found": lost_and_found,
    "travel": travel,
    "travel_forwarding": travel_forwarding,
    "new_handset": new_handset,
    "password_reset": password_reset,
    "big_purchase": big_purchase,
    "big_purchase_new_card": big_purchase_new_card,
    "late_card": late_card,
    "business_payees": business_payees,
    "night_worker": night_worker,
    "call_forwarding": _call_forwarding,
    "sms_forwarding": _sms_forwarding,
}
