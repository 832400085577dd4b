"""Legitimate customers: account set-up, daily sessions, and attack look-alikes.

The generator reproduces ordinary quick-payment behaviour (sessions following a daily,
weekly and payday rhythm; log-normal amounts per merchant category with Zipf-popular
merchants; SMS OTP on card binding and larger payments) and, at small documented rates, the
legitimate behaviour that fraud rules confuse with attacks: lost-phone SIM replacement,
reported-then-undone line suspension, travel, shared family devices, three cards bound on
day one, 1 a.m. game top-ups, password resets, big purchases on a fresh card, gold churn,
night-time merchant auto-debits, and customers who forward calls or SMS.
"""

from datetime import timedelta
from itertools import accumulate

from payguard.sim.population import (
    CAT_WEIGHTS_ADULT,
    CAT_WEIGHTS_STUDENT,
    CATEGORIES,
    Body,
    User,
    amount_for,
    city_ip,
    lognormal_fen,
    make_device,
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


def generate_legit(w: World) -> None:
    """All legitimate traffic: set-up history, onboarding, sessions, look-alikes."""
    for user in w.users:
        if user.reg_ts >= w.start_ts:
            onboard(w, user)
        elif w.cfg.history:
            history(w, user)
    lookalikes(w)
    for user in w.users:
        sessions(w, user)
        monthly(w, user)


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


def onboard(w: World, user: User) -> None:
    """A customer signing up in the window; some bind three cards on day one (look-alike)."""
    rng = w.rng
    who = _home(user)
    t = register(w, user, user.reg_ts, who)
    burst = rng.random() < 0.15 * w.cfg.lookalike_rate
    if burst:
        while len(user.cards) < 3:
            user.cards.append(make_pan(rng, credit=rng.random() < 0.3))
    t = bind_card(w, user, t + rng.randint(60, 900), who, user.cards[0])
    for card in user.cards[1:]:
        if burst:
            t = bind_card(w, user, t + rng.randint(30, 600), who, card)
        else:
            bind_card(w, user, t + rng.randint(HOUR, 3 * DAY), who, card)


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


def lookalikes(w: World) -> None:
    """Legitimate behaviour that resembles the attack chains, each at a small rate."""
    rng, users = w.rng, w.users
    scale = w.cfg.lookalike_rate
    for user in users:
        r = rng.random() / scale
        if r < 0.003:
            lost_phone(w, user)
        elif r < 0.005:
            suspend_once(w, user)
        elif r < 0.035:
            travel(w, user)
        elif r < 0.04:
            password_reset(w, user)
        elif r < 0.043:
            big_purchase_new_card(w, user)
        elif r < 0.058:
            late_card(w, user)
        elif r < 0.06:
            carrier(w, _window_time(w, user), "call_forward_set", user.phone)
        elif r < 0.061:
            carrier(w, _window_time(w, user), "sms_forward_set", user.phone)


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


def suspend_once(w: World, user: User) -> None:
    """Phone reported lost, found again: one suspend, one resume hours later."""
    t = _window_time(w, user)
    carrier(w, t, "line_suspend", user.phone)
    carrier(w, t + w.rng.randint(HOUR, 2 * DAY), "line_resume", user.phone)


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
