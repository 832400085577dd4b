"""The six attack scenarios, each a family of tactic variants, plus the victims' feedback.

A campaign draws one variant (`scenario/tactic`, see `config.SPLIT`) and then draws its own
continuous parameters — amounts, gaps, counts, hours, pool sizes — from ranges, so that no
constant (a fixed price, a fixed burst size, an exact multiple of 1,000 yuan) marks the
attack. Attack events are labelled through the `Campaign`, never inside the event itself;
what the attacker can pass rides on the label when it differs from the scenario default.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from payguard.scenarios import SCENARIOS, default_can_pass
from payguard.sim.config import SPLIT
from payguard.sim.legit import payment
from payguard.sim.population import (
    Body,
    Device,
    User,
    amount_for,
    attacker_ip,
    city_ip,
    lognormal_fen,
    make_device,
    make_name,
    make_pan,
    pick_city,
)
from payguard.sim.world import DAY, HOUR, MINUTE, World, base, yuan

_CASHOUT_CATS = ("virtual_goods", "gift_card", "mobile_topup", "game")
_SCRIPT_UAS = (
    "python-requests/2.31.0",
    "Apache-HttpClient/4.5.13 (Java/1.8.0_292)",
    "Go-http-client/1.1",
    "okhttp/4.10.0",
)


@dataclass(slots=True)
class Hit:
    """An attack money event on a victim: what a later fraud_report/chargeback refers to.

    `venue` marks events at a merchant many honest customers also use (a gift-card shop, a
    leaked biller), so that some reports name a shared venue."""

    user: User
    seq: int
    ts: int
    card: Body | None
    amount: int
    venue: bool = False


@dataclass(slots=True)
class Campaign:
    """One attacker operation: labels every event it emits with its id, scenario, variant."""

    w: World
    scenario: str
    tactic: str
    cid: str
    hits: list[Hit] = field(default_factory=list)
    last_ts: int = 0
    can_pass: tuple[str, ...] | None = None

    @property
    def variant(self) -> str:
        return f"{self.scenario}/{self.tactic}"

    def passes(self, methods: frozenset[str]) -> None:
        """Set what this campaign's attacker passes from now on (label `can_pass`)."""
        same = methods == default_can_pass(self.scenario)
        self.can_pass = None if same else tuple(sorted(methods))

    def emit(self, t: int, body: Body) -> int:
        seq = self.w.em.emit(t, body)
        self.w.em.labels[seq] = (self.cid, self.scenario, self.variant, self.can_pass)
        self.last_ts = max(self.last_ts, t)
        return seq

    def grant(self, since: int, methods: frozenset[str]) -> None:
        """Relabel this campaign's events from sequence `since` on with `methods` (e.g. a
        stuffing victim who turns out to read the code out loud)."""
        em = self.w.em
        same = methods == default_can_pass(self.scenario)
        can = None if same else tuple(sorted(methods))
        for seq in range(since, em.next_seq):
            label = em.labels.get(seq)
            if label is not None and label[0] == self.cid:
                em.labels[seq] = (label[0], label[1], label[2], can)

    def otp(
        self,
        t: int,
        who: Body,
        phone: str,
        purpose: str,
        ok: bool = True,
        delay: tuple[int, int] = (10, 60),
    ) -> int:
        """otp_send to the victim's phone, otp_verify from the attacker's device."""
        em = self.w.em
        send = self.emit(
            t,
            {
                "type": "otp_send",
                **who,
                "phone": phone,
                "method": "sms",
                "attrs": {"purpose": purpose},
            },
        )
        t += self.w.rng.randint(*delay)
        self.emit(t, em.ref({"type": "otp_verify", **who, "method": "sms", "success": ok}, send))
        return t

    def money(self, t: int, body: Body, user: User, amount: int, venue: bool = False) -> int:
        body["amount"] = yuan(amount)
        seq = self.emit(t, body)
        self.hits.append(Hit(user, seq, t, body.get("card"), amount, venue))
        return seq


class Victims:
    """Draws distinct victims among users already registered at a given time."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.taken: set[str] = set()

    def draw(self, before: int, need_credit: bool = False) -> User:
        users, rng = self.w.users, self.w.rng
        for _ in range(200):
            user = users[rng.randrange(len(users))]
            if user.uid in self.taken or user.reg_ts > before - DAY:
                continue
            if need_credit and not any(c["kind"] == "credit" for c in user.cards):
                continue
            self.taken.add(user.uid)
            return user
        return users[rng.randrange(len(users))]


# --- shared draws ---------------------------------------------------------------------------


def _start(w: World, span_days: int) -> tuple[int, int]:
    """A campaign start day leaving room for `span_days` of activity; returns (day, ts)."""
    day = w.rng.randrange(max(1, w.cfg.days - span_days))
    return day, w.day_start(day)


def _span(w: World, lo: int, hi: int) -> int:
    """A campaign length in days drawn from lo..hi, never longer than the window."""
    return max(1, min(w.cfg.days, w.rng.randint(lo, hi)))


def _hours(rng: random.Random) -> tuple[float, float]:
    """A per-campaign activity window (local hours; the end may pass midnight)."""
    lo = rng.uniform(0.0, 22.0)
    return lo, lo + rng.uniform(2.0, 9.0)


def _gap(rng: random.Random, lo: tuple[int, int], hi: tuple[int, int]) -> tuple[int, int]:
    """A per-campaign (min, max) gap in seconds, both ends drawn from ranges."""
    a = rng.randint(*lo)
    return a, max(a + 1, rng.randint(*hi))


def _outsider(rng: random.Random, home: str, kind: str | None = None) -> tuple[Device, str, str]:
    """Attacker device, IP and city: an emulator, second-hand phone or browser, usually far
    from the victim, from hosting ranges or a residential proxy (sometimes in the victim's
    own city)."""
    if kind is None:
        kind = "emulator" if rng.random() < 0.4 else "phone"
    dev = make_device(rng, kind)
    city = pick_city(rng, other_than=home) if rng.random() < 0.75 else home
    ip = attacker_ip(rng) if rng.random() < 0.45 else city_ip(rng, city)
    return dev, ip, city


def near_round(rng: random.Random, fen: int) -> int:
    """A near-round amount close to `fen`: 10,000 / 9,800 / 19,999 / 4,999.50 / 2,999.99
    shapes, so that rules must measure the distance to a round number rather than test
    `amount % 100000 == 0`."""
    unit = 1_000_00 if fen >= 5_000_00 else 100_00 if fen >= 500_00 else 10_00
    top = max(unit, round(fen / unit) * unit)
    change = rng.choice((0, 0, 1_00, 50, 1, top // 50, top // 100, 10_00))
    return max(1_00, top - change)


def shape(rng: random.Random, fen: int, style: str) -> int:
    """Amount styles a campaign keeps: odd (with change), round hundreds, or near-round."""
    if style == "round":
        return max(100_00, fen // 100_00 * 100_00)
    if style == "near":
        return near_round(rng, fen)
    return max(1_00, fen - rng.randrange(100))


def _style(rng: random.Random) -> str:
    return rng.choice(("odd", "odd", "round", "near", "near"))


def _split(rng: random.Random, budget: int, parts: int, style: str) -> list[int]:
    """Amounts (fen) summing to at most `budget`, shaped by `style`."""
    cuts = sorted(rng.random() for _ in range(parts - 1))
    shares = [b - a for a, b in zip([0.0, *cuts], [*cuts, 1.0], strict=True)]
    out = [shape(rng, max(50_00, int(budget * s)), style) for s in shares]
    while sum(out) > budget and max(out) > 100_00:
        i = out.index(max(out))
        out[i] = shape(rng, int(out[i] * 0.9), style)
    return out


def _cashout_merchant(w: World, cats: tuple[str, ...]) -> tuple[Body, bool]:
    """A Zipf-popular cash-out venue; (merchant, shared venue?)."""
    cat = w.rng.choice(cats)
    return w.merchants.pick(w.rng, cat), cat in ("gift_card", "mobile_topup", "virtual_goods")


def _new_payee(rng: random.Random) -> Body:
    return {
        "id": f"p{rng.getrandbits(48):012x}",
        "card": make_pan(rng, False),
        "name": make_name(rng),
    }


# --- 1. OTP-channel compromise ------------------------------------------------------------


def sms_forwarding(c: Campaign, victims: Victims) -> None:
    """Password known, OTPs diverted by an SMS-backup/forwarding service; drain under limits.

    Tactics: the carrier `sms_forward_set` signal present (minutes to days earlier) or absent;
    the attacker in an app (emulator or second-hand phone) or a browser; one day just under
    the daily limit, or spread over 2-4 days with smaller daily sums.
    """
    w, rng, tactic = c.w, c.w.rng, c.tactic
    signal = tactic.startswith("signal")
    web = "web" in tactic
    n_days = rng.randint(2, 4) if tactic.endswith("spread") else 1
    day, _ = _start(w, n_days + 1)
    hours = _hours(rng)
    gap = _gap(rng, (10, 90), (120, 1800))
    verify = _gap(rng, (4, 20), (25, 120))
    share = rng.uniform(0.5, 0.98) / (rng.uniform(1.0, 2.5) if n_days > 1 else 1.0)
    style = _style(rng)
    cats = tuple(rng.sample(_CASHOUT_CATS, rng.randint(1, 3)))
    sms_login = rng.random() < 0.3
    for _ in range(rng.randint(1, 3)):
        v = victims.draw(w.day_start(day))
        dev, ip, city = _outsider(rng, v.city, "web" if web else None)
        who = base(v.uid, dev, ip, city)
        t = w.at_hour(day, *hours)
        if signal:
            c.emit(
                t - rng.randint(5 * MINUTE, 3 * DAY), {"type": "sms_forward_set", "phone": v.phone}
            )
        if rng.random() < 0.15:
            c.emit(t, {"type": "login", **who, "method": "password", "success": False})
            t += rng.randint(20, 300)
        t = _fwd_login(c, v, who, t, sms_login)
        if rng.random() < 0.1:
            continue  # probing only: checks the account works, comes back another time
        for d in range(n_days):
            if d:
                t = _fwd_login(c, v, who, w.at_hour(day + d, *hours), sms_login)
            budget = int(w.cfg.daily_limit_fen * share * rng.uniform(0.85, 1.0))
            for fen in _split(rng, budget, rng.randint(1, 2 if n_days > 1 else 4), style):
                t = c.otp(t + rng.randint(*gap), who, v.phone, "payment", delay=verify)
                merchant, venue = _cashout_merchant(w, cats)
                body = {"type": "payment", **who, "card": rng.choice(v.cards), "merchant": merchant}
                c.money(t + rng.randint(1, 10), body, v, fen, venue)


def _fwd_login(c: Campaign, v: User, who: Body, t: int, sms: bool) -> int:
    if sms:
        t = c.otp(t, who, v.phone, "login", delay=(8, 40)) + 2
    c.emit(t, {"type": "login", **who, "method": "sms" if sms else "password", "success": True})
    return t


# --- 2. Credential stuffing -----------------------------------------------------------------


def credential_stuffing(c: Campaign, victims: Victims) -> None:
    """Leaked password lists replayed; a few logins succeed, then gold churn or a transfer.

    Tactics: one address (one to three devices) or a rotating pool (hosting ranges in a
    burst, residential proxies when slow); a burst seconds apart or low-and-slow over days;
    then precious-metal buy/redeem churn or a transfer to a new payee, which needs the
    victim to read the SMS code to a caller (those events get `can_pass: ["sms_otp"]`).
    """
    w, rng, tactic = c.w, c.w.rng, c.tactic
    slow = "slow" in tactic
    if tactic.startswith("one_ip"):
        city = pick_city(rng)
        ips = [attacker_ip(rng) if rng.random() < 0.6 else city_ip(rng, city)]
        cities = [city]
        pool = [make_device(rng, "emulator") for _ in range(rng.randint(1, 3))]
    else:
        cities = [pick_city(rng) for _ in range(rng.randint(5, 80))]
        ips = [city_ip(rng, ct) if slow else attacker_ip(rng) for ct in cities]
        pool = [
            make_device(rng, "emulator")
            for _ in range(rng.randint(1, 3) if slow else rng.randint(3, 12))
        ]
    gap = _gap(rng, (120, 900), (1200, 5400)) if slow else _gap(rng, (1, 3), (4, 40))
    day, _ = _start(w, 4 if slow else 2)
    t = w.at_hour(day, 0, 24)
    n_success = rng.randint(2, 6)
    attempts = n_success * (rng.randint(6, 25) if slow else rng.randint(15, 90))
    winners = set(rng.sample(range(attempts), n_success))
    ghost, retry = rng.uniform(0.1, 0.5), rng.uniform(0.0, 0.3)
    reads = rng.uniform(0.2, 0.6)
    for i in range(attempts):
        t += rng.randint(*gap)
        k = rng.randrange(len(ips))
        if i in winners:
            v = victims.draw(t)
            who = base(v.uid, rng.choice(pool), ips[k], cities[k])
            login = c.emit(t, {"type": "login", **who, "method": "password", "success": True})
            if _stuffing_cashout(c, v, who, t + rng.randint(MINUTE, 8 * HOUR), reads):
                c.grant(login, frozenset({"sms_otp"}))
            continue
        uid = w.new_uid() if rng.random() < ghost else w.users[rng.randrange(len(w.users))].uid
        who = base(uid, rng.choice(pool), ips[k], cities[k])
        for _ in range(2 if rng.random() < retry else 1):
            c.emit(t, {"type": "login", **who, "method": "password", "success": False})
            t += rng.randint(1, 5)


def _stuffing_cashout(c: Campaign, v: User, who: Body, t: int, reads: float) -> bool:
    """Gold churn and/or a transfer; returns whether this victim read a code to the caller."""
    rng = c.w.rng
    if c.tactic.endswith("gold"):
        gold = {"id": f"gold-{rng.randrange(3):02d}", "category": "precious_metal"}
        lo = rng.randint(5, 80) * 100_00
        total = 0
        for _ in range(rng.randint(1, 5)):
            fen = shape(rng, rng.randint(lo, lo * 3), "near" if rng.random() < 0.5 else "odd")
            t += rng.randint(30, 1200)
            body = {"type": "investment_buy", **who, "card": v.cards[0], "merchant": gold}
            c.money(t, body, v, fen)
            total += fen
        t += rng.randint(5 * MINUTE, 6 * HOUR)
        c.money(t, {"type": "investment_redeem", **who, "merchant": gold}, v, total)
        if rng.random() < 0.6:
            return False
    reads_code = rng.random() < reads
    t = c.otp(t + rng.randint(30, 600), who, v.phone, "transfer", reads_code, (15, 120))
    if not reads_code:
        for _ in range(rng.randint(0, 2)):
            t = c.otp(t + rng.randint(30, 300), who, v.phone, "transfer", False, (15, 120))
        return False
    fen = shape(rng, int(min(v.balance_fen, 5_000_000) * rng.uniform(0.5, 1.0)), _style(rng))
    body = {"type": "transfer", **who, "card": v.cards[0], "payee": _new_payee(rng)}
    c.money(t + rng.randint(2, 30), body, v, fen)
    return True


# --- 3. Phone theft -------------------------------------------------------------------------

_THEFT_SIGNALS = {
    "swap_new_device_one_night": "prompt",
    "owner_handset_suspend_cycles": "cycles",
    "owner_handset_unnoticed_night": "none",
    "late_signal_spread": "late",
    "owner_handset_silent": "none",
}
_THEFT_CASHOUT = {
    "swap_new_device_one_night": ("loan", "gift_card", "mobile_topup"),
    "owner_handset_suspend_cycles": ("gift_card", "mobile_topup", "transfer"),
    "owner_handset_unnoticed_night": ("transfer", "gift_card", "loan"),
    "late_signal_spread": ("loan", "transfer", "gift_card"),
    "owner_handset_silent": ("transfer", "mobile_topup", "loan"),
}


def phone_theft_takeover(c: Campaign, victims: Victims) -> None:
    """Stolen phone: SMS in the thief's hands, then everything tied to the number.

    Tactics: carrier signals prompt (sim_swap), as repeated suspend/resume cycling (the
    owner's loss report undone again and again), late (hours after the takeover) or absent
    (an unlocked handset drained in the night before its owner notices);
    the thief on the owner's unlocked handset (passes in_app_confirm) or on a new device
    (cannot); one night or two to three days; new accounts on the victim's phone and ID or
    only the existing one; cash-out by loans, gift cards, top-ups or transfers. A thief with
    photos of the owner passes a face check.
    """
    w, rng, tactic = c.w, c.w.rng, c.tactic
    owner = tactic.startswith("owner_handset")
    signals = _THEFT_SIGNALS[tactic]
    nights = rng.randint(2, 3) if tactic in ("late_signal_spread", "owner_handset_silent") else 1
    day, _ = _start(w, nights + 1)
    v = victims.draw(w.day_start(day))
    photos = rng.random() < (0.8 if owner else 0.5)
    methods = {"sms_otp", "callback"} | ({"in_app_confirm"} if owner else set())
    c.passes(frozenset(methods | ({"face"} if photos else set())))
    dev = v.devices[0] if owner else make_device(rng)
    ip = city_ip(rng, v.city) if rng.random() < 0.8 else v.ips[1]
    who = base(v.uid, dev, ip, v.city)
    t = w.at_hour(day, 19, 26) if nights == 1 else w.at_hour(day, 8, 26)
    if signals == "prompt":
        c.emit(t, {"type": "sim_swap", "phone": v.phone})
        t = _suspend_cycles(c, v, t + rng.randint(10 * MINUTE, 2 * HOUR), rng.randint(0, 3))
    elif signals == "cycles":
        t = _suspend_cycles(c, v, t + rng.randint(5 * MINUTE, HOUR), rng.randint(2, 40))
    elif signals == "late":
        lag = rng.randint(2 * HOUR, 30 * HOUR)
        c.emit(t + lag, {"type": "sim_swap", "phone": v.phone})
    if signals in ("prompt", "cycles") and rng.random() < 0.4:
        c.emit(t + rng.randint(60, 900), {"type": "call_forward_set", "phone": v.phone})
    t = _theft_entry(c, v, who, t + rng.randint(2 * MINUTE, 40 * MINUTE), owner)
    if rng.random() < 0.15:
        return  # the owner got the line or the account blocked before any money moved
    accounts = [v.uid]
    if not owner:
        accounts += [_fake_account(c, v, who, t) for _ in range(rng.randint(0, 3))]
    bound = (
        _bind_burst(c, v, accounts, who, t + rng.randint(5 * MINUTE, HOUR))
        if len(accounts) > 1
        else []
    )
    t = max([t, *(b[0] for b in bound)])
    palette = _THEFT_CASHOUT[tactic]
    ways = tuple(rng.sample(palette, rng.randint(1, len(palette))))
    for n in range(nights):
        if nights == 1:
            night = w.at_hour(day + 1, 0, 6)
            t = max(t + rng.randint(MINUTE, 20 * MINUTE), night if rng.random() < 0.7 else t)
        else:
            t = max(t + 10 * MINUTE, w.at_hour(day + n, 0, 24))
        t = _theft_cashout(c, v, accounts, who, t, ways)
    for _, uid, card in bound:
        if uid != v.uid and rng.random() < 0.7:
            t += rng.randint(30, 600)
            c.emit(t, {"type": "card_unbind", **base(uid, dev, who["ip"], v.city), "card": card})


def _theft_entry(c: Campaign, v: User, who: Body, t: int, owner: bool) -> int:
    """Into the account: the owner's app still logged in, an SMS login, or a reset by SMS."""
    rng = c.w.rng
    r = rng.random()
    if owner and r < 0.4:
        return t  # the app on the unlocked handset is already signed in
    if r < 0.7:
        t = c.otp(t, who, v.phone, "password_reset", delay=(5, 40))
        c.emit(t + 3, {"type": "password_reset", **who, "method": "sms", "success": True})
        t += rng.randint(20, 180)
        c.emit(t, {"type": "login", **who, "method": "password", "success": True})
        return t
    t = c.otp(t, who, v.phone, "login", delay=(5, 40)) + 2
    c.emit(t, {"type": "login", **who, "method": "sms", "success": True})
    return t


def _suspend_cycles(c: Campaign, v: User, t: int, cycles: int) -> int:
    rng = c.w.rng
    fast = cycles > 3
    for _ in range(cycles):
        c.emit(t, {"type": "line_suspend", "phone": v.phone})
        t += rng.randint(MINUTE, 8 * MINUTE if fast else 40 * MINUTE)
        c.emit(t, {"type": "line_resume", "phone": v.phone})
        t += rng.randint(MINUTE, 6 * MINUTE if fast else 30 * MINUTE)
    return t


def _fake_account(c: Campaign, v: User, who: Body, t: int) -> str:
    """A NEW account registered on the victim's phone and ID, KYC passed by face."""
    rng = c.w.rng
    uid = c.w.new_uid()
    mine = {**who, "user_id": uid}
    t += rng.randint(5 * MINUTE, 60 * MINUTE)
    t = c.otp(t, mine, v.phone, "register", delay=(5, 30))
    c.emit(t + 2, {"type": "register", **mine, "phone": v.phone})
    c.emit(
        t + rng.randint(30, 300),
        {"type": "kyc_verify", **mine, "id_number": v.id_number, "method": "face", "success": True},
    )
    return uid


def _bind_burst(
    c: Campaign, v: User, accounts: list[str], who: Body, t: int
) -> list[tuple[int, str, Body]]:
    rng = c.w.rng
    bound = []
    for card in v.cards:
        uid = rng.choice(accounts)
        mine = {**who, "user_id": uid}
        t = c.otp(t + rng.randint(10, 300), mine, v.phone, "card_bind", delay=(4, 30))
        c.emit(t + 2, {"type": "card_bind", **mine, "card": card, "phone": v.phone})
        bound.append((t + 2, uid, card))
    return bound


def _theft_cashout(
    c: Campaign, v: User, accounts: list[str], who: Body, t: int, ways: tuple[str, ...]
) -> int:
    """Loans disbursed to the cards, then gift cards, top-ups and mule transfers."""
    w, rng = c.w, c.w.rng
    if "loan" in ways:
        for uid in accounts:
            if rng.random() < 0.7:
                t = _theft_loan(c, v, {**who, "user_id": uid}, t)
    others = [way for way in ways if way != "loan"] or ["transfer"]
    gap = _gap(rng, (15, 120), (200, 1800))
    for _ in range(rng.randint(1, 8)):
        t += rng.randint(*gap)
        way = rng.choice(others)
        card = rng.choice(v.cards)
        if way == "transfer":
            body = {"type": "transfer", **who, "card": card, "payee": _new_payee(rng)}
            fen = shape(rng, rng.randint(500_00, 30_000_00), _style(rng))
            c.money(t, body, v, fen)
        else:
            merchant = w.merchants.pick(rng, way)
            body = {"type": "payment", **who, "card": card, "merchant": merchant}
            fen = amount_for(rng, way) * rng.randint(1, 10) if rng.random() < 0.5 else 0
            fen = fen or shape(rng, rng.randint(100_00, 5_000_00), _style(rng))
            c.money(t, body, v, fen, venue=True)
    return t


def _theft_loan(c: Campaign, v: User, who: Body, t: int) -> int:
    rng = c.w.rng
    lender = {"id": f"lender-{rng.randrange(5):02d}", "category": "loan"}
    fen = shape(rng, rng.randint(5_000_00, 200_000_00), _style(rng))
    apply = c.money(t, {"type": "loan_apply", **who, "merchant": lender}, v, fen)
    t += rng.randint(MINUTE, 45 * MINUTE)
    body = {"type": "loan_disburse", **who, "merchant": lender, "card": v.cards[0]}
    c.money(t, c.w.em.ref(body, apply), v, fen)
    return t


# --- 4. Merchant credential leak ----------------------------------------------------------


def merchant_credential_leak(c: Campaign, victims: Victims) -> None:
    """Leaked merchant API keys: server-to-server debits of many payers' cards.

    Tactics: a biller with API history (its own auto-debits come over the API every month)
    or a merchant that never used the API; a burst (seconds apart) or a slow drip over
    days; small amounts (a few yuan) or ordinary ones. Calls come from new networks
    (hosting or residential proxies), with a script user agent or none at all.
    """
    w, rng, tactic = c.w, c.w.rng, c.tactic
    drip = "drip" in tactic
    if tactic.startswith("api_biller"):
        pool = w.merchants.by_cat["utilities"]
    else:
        pool = w.merchants.by_cat[rng.choice(("food", "other", "virtual_goods", "travel"))]
    merchant = pool[rng.randrange(min(len(pool), rng.randint(5, 60)))]
    ips = [
        attacker_ip(rng) if rng.random() < 0.6 else city_ip(rng, pick_city(rng))
        for _ in range(rng.randint(1, 12))
    ]
    ua = rng.choice((*_SCRIPT_UAS, None, None))
    if tactic.endswith("small"):
        lo = rng.randint(50, 1_500)
        amounts = (lo, lo + rng.randint(200, 6_000))
    else:
        lo = rng.randint(20_00, 800_00)
        amounts = (lo, lo * rng.randint(1, 8))
    style = rng.choice(("odd", "odd", "round", "fixed"))
    fixed = rng.randint(*amounts)
    n_days = rng.randint(2, 5) if drip else 1
    day, _ = _start(w, n_days + 1)
    hours = _hours(rng)
    gap = (
        _gap(rng, (3 * MINUTE, 20 * MINUTE), (30 * MINUTE, 4 * HOUR))
        if drip
        else _gap(rng, (1, 3), (4, 90))
    )
    doubles = rng.uniform(0.0, 0.1)
    payers = rng.randint(10, 80) if drip else rng.randint(15, 150)
    d, t = 0, w.at_hour(day, *hours)
    for _ in range(payers):
        t += rng.randint(*gap)
        if drip and t > w.day_start(day + d) + int(hours[1] * HOUR) and d + 1 < n_days:
            d += 1
            t = w.at_hour(day + d, *hours)
        v = victims.draw(t)
        who = base(v.uid, None, rng.choice(ips), None)
        if ua is not None:
            who["user_agent"] = ua
        for _ in range(2 if rng.random() < doubles else 1):
            fen = fixed if style == "fixed" else rng.randint(*amounts)
            fen = shape(rng, fen, style) if style == "round" and fen >= 100_00 else fen
            body = {"type": "payment", **who, "card": v.cards[0], "merchant": merchant}
            c.money(t, body, v, fen, venue=True)
            t += rng.randint(1, 5)


# --- 5. Cash-out collusion ----------------------------------------------------------------


def cash_out_collusion(c: Campaign, victims: Victims) -> None:
    """Credit-card cash-out: the cardholder, on their own device with a normal history, pays
    a colluding merchant and gets the money back in cash.

    Tactics: a brand-new merchant over days; an established small merchant (real history in
    the catalog) with partial refunds over weeks; a shop with weeks of its own small sales
    whose cardholders rotate credit cards; a young merchant with a few days to weeks
    of real sales first, over weeks; an established merchant taking several credit cards
    per cardholder. Amounts are near-round (9,800 / 19,999 / 4,999.50) or not, around a
    per-campaign scale; payments per day and refunds vary per campaign.
    """
    w, rng, tactic = c.w, c.w.rng, c.tactic
    if tactic == "seasoned_shop_rotating_cards":
        _seasoned_shop_cash_out(c, victims)
        return
    if tactic == "shop_ring_split_tickets":
        _shop_ring_cash_out(c, victims)
        return
    cat = rng.choice(("other", "ecommerce", "precious_metal", "gift_card", "travel"))
    weeks = tactic.endswith("weeks")
    span = _span(w, 7, 28) if weeks else _span(w, 3, 12)
    day, _ = _start(w, span)
    if tactic.startswith("established"):
        tail = w.merchants.by_cat[cat]
        merchant = tail[rng.randrange(len(tail) // 2, len(tail))]
    else:
        merchant = {"id": f"m-{cat[:4]}-n{rng.getrandbits(32):08x}", "category": cat}
        if tactic.startswith("young"):
            _young_sales(w, merchant, day)
    scale = min(50_000_00, max(800_00, int(5_000_00 * 2.718 ** rng.gauss(0.0, 0.7))))
    round_share = rng.uniform(0.5, 1.0)
    refunds = rng.uniform(0.2, 0.5) if "refunds" in tactic or weeks else rng.uniform(0.0, 0.15)
    n_cards = rng.randint(2, 4) if tactic.endswith("several_cards") else rng.randint(1, 2)
    per_day = rng.uniform(0.2, 1.5) * (0.5 if weeks else 1.0)
    for _ in range(rng.randint(1, 5)):
        v = victims.draw(w.day_start(day), need_credit=rng.random() < 0.7)
        who = base(v.uid, v.devices[0], rng.choice(v.ips), v.city)
        cards = [card for card in v.cards if card["kind"] == "credit"][:n_cards]
        t = w.at_hour(day, 9, 22)
        while len(cards) < (n_cards if tactic.endswith("several_cards") else 1):
            card = make_pan(rng, credit=True)
            t = c.otp(t + rng.randint(MINUTE, HOUR), who, v.phone, "card_bind", delay=(8, 40))
            c.emit(t + 3, {"type": "card_bind", **who, "card": card, "phone": v.phone})
            cards.append(card)
        hours = (rng.uniform(8, 14), rng.uniform(16, 23.5))
        counts = [w.poisson(per_day) for _ in range(span)]
        if not any(counts):
            counts[rng.randrange(span)] = 1  # a cardholder who joined pays at least once
        for d, count in enumerate(counts):
            for _ in range(count):
                t = w.at_hour(day + d, *hours)
                fen = int(scale * rng.uniform(0.4, 1.6))
                fen = near_round(rng, fen) if rng.random() < round_share else shape(rng, fen, "odd")
                card = rng.choice(cards)
                body = {"type": "payment", **who, "card": card, "merchant": merchant}
                seq = c.money(t, body, v, fen)
                if rng.random() < refunds:
                    _collusion_refund(c, v, seq, t, card, merchant, fen)


def _young_sales(w: World, merchant: Body, day: int) -> None:
    """Real (unlabelled) small sales at a young merchant for days to weeks before."""
    rng = w.rng
    age = rng.randint(2, 25)
    rate = rng.uniform(0.5, 6.0)
    for d in range(max(0, day - age), day + 1):
        for _ in range(w.poisson(rate)):
            u = w.users[rng.randrange(len(w.users))]
            t = w.at_hour(d, 9, 22)
            if t < u.reg_ts + HOUR:
                continue
            who = base(u.uid, u.devices[0], u.ips[0], u.city)
            fen = amount_for(rng, "other")
            body = {
                "type": "payment",
                **who,
                "card": u.cards[0],
                "amount": yuan(fen),
                "merchant": merchant,
            }
            w.em.emit(t, body)


def _seasoned_shop_cash_out(c: Campaign, victims: Victims) -> None:
    """A shop that has sold small to its own customers for one to three weeks, and goes on
    selling, lends itself to a cash-out: one to three cardholders, each rotating one to
    three credit cards (bound on the spot when they have fewer), pay it large, mostly
    near-round amounts over four to sixteen days; some payments are partly refunded."""
    w, rng = c.w, c.w.rng
    cat = rng.choice(("other", "ecommerce", "travel", "precious_metal"))
    merchant = {"id": f"m-{cat[:4]}-s{rng.getrandbits(32):08x}", "category": cat}
    selling, span = rng.randint(7, 21), _span(w, 4, 16)
    day = min(w.cfg.days - 1, selling + rng.randrange(max(1, w.cfg.days - span - selling)))
    _shop_sales(w, merchant, max(0, day - selling), min(w.cfg.days, day + span))
    scale = min(30_000_00, max(1_000_00, int(4_000_00 * 2.718 ** rng.gauss(0.0, 0.6))))
    round_share, refunds = rng.uniform(0.4, 0.9), rng.uniform(0.0, 0.3)
    for _ in range(rng.randint(1, 3)):
        v = victims.draw(w.day_start(day), need_credit=True)
        who = base(v.uid, v.devices[0], rng.choice(v.ips), v.city)
        cards = [card for card in v.cards if card["kind"] == "credit"]
        wanted = rng.randint(1, 3)
        t = w.at_hour(day, 9, 21)
        while len(cards) < wanted:
            cards.append(make_pan(rng, credit=True))
            t = c.otp(t + rng.randint(MINUTE, HOUR), who, v.phone, "card_bind", delay=(8, 40))
            c.emit(t + 3, {"type": "card_bind", **who, "card": cards[-1], "phone": v.phone})
        cards = cards[:wanted]
        per_day, paid = rng.uniform(0.3, 1.2), 0
        for d in range(span):
            for _ in range(w.poisson(per_day) or (1 if d == span - 1 and not paid else 0)):
                t = w.at_hour(day + d, 10, 23)
                fen = int(scale * rng.uniform(0.5, 1.5))
                fen = near_round(rng, fen) if rng.random() < round_share else shape(rng, fen, "odd")
                card = cards[paid % len(cards)]
                body = {"type": "payment", **who, "card": card, "merchant": merchant}
                seq = c.money(t, body, v, fen)
                paid += 1
                if rng.random() < refunds:
                    _collusion_refund(c, v, seq, t, card, merchant, fen)


def _shop_ring_cash_out(c: Campaign, victims: Victims) -> None:
    """A ring of two to four colluding shops splits each cardholder's cash-out into tickets
    under a per-campaign cap, spread over the ring (the public 套现 cases: "one POS takes
    too much, so use several shops; keep each ticket under the bank's big-ticket check").
    Some shops are new, some have days to weeks of their own small sales; the cardholders
    (one to three, on their own phones with their normal history, one or two credit cards
    each) start small and build up over one to three weeks, a ticket or two on the days
    they cash out, odd amounts as often as near-round ones."""
    w, rng = c.w, c.w.rng
    span = _span(w, 7, 21)
    day, _ = _start(w, span)
    cat = rng.choice(("other", "ecommerce", "travel", "food", "precious_metal"))
    shops: list[Body] = []
    for _ in range(rng.randint(2, 4)):
        shop = {"id": f"m-{cat[:4]}-r{rng.getrandbits(32):08x}", "category": cat}
        if rng.random() < 0.5:  # trading a while before the ring uses it
            _shop_sales(w, shop, max(0, day - rng.randint(3, 20)), min(w.cfg.days, day + span))
        shops.append(shop)
    cap = rng.randint(2_000_00, 10_000_00)
    style = rng.choice(("odd", "odd", "near", "round"))
    for _ in range(rng.randint(1, 3)):
        v = victims.draw(w.day_start(day), need_credit=True)
        who = base(v.uid, v.devices[0], rng.choice(v.ips), v.city)
        cards = [card for card in v.cards if card["kind"] == "credit"][: rng.randint(1, 2)]
        if not cards:  # a tiny world's fallback victim binds a credit card on the spot
            cards.append(make_pan(rng, credit=True))
            t = c.otp(w.at_hour(day, 9, 21), who, v.phone, "card_bind", delay=(8, 40))
            c.emit(t + 3, {"type": "card_bind", **who, "card": cards[-1], "phone": v.phone})
        per_day, paid = rng.uniform(0.3, 1.0), 0
        for d in range(span):
            build = min(1.0, 0.35 + d / max(1, span))  # small tickets first, then more
            for _ in range(w.poisson(per_day) or (1 if d == span - 1 and not paid else 0)):
                fen = int(cap * build * rng.uniform(0.6, 1.0))
                fen = min(cap - rng.randint(1, 300_00), shape(rng, fen, style))
                t = w.at_hour(day + d, 9, 22)
                card = cards[paid % len(cards)]
                body = {"type": "payment", **who, "card": card, "merchant": rng.choice(shops)}
                seq = c.money(t, body, v, max(100_00, fen))
                paid += 1
                if rng.random() < 0.15:
                    _collusion_refund(c, v, seq, t, card, body["merchant"], fen)


def _shop_sales(w: World, merchant: Body, first_day: int, end_day: int) -> None:
    """Unlabelled small sales of a shop to customers of the population, `first_day` up to
    `end_day` (exclusive), a per-shop rate and ticket size."""
    rng = w.rng
    rate, median = rng.uniform(1.0, 8.0), rng.uniform(30_00, 300_00)
    for day in range(first_day, end_day):
        for _ in range(w.poisson(rate)):
            t = w.at_hour(day, 8, 22)
            user = w.users[rng.randrange(len(w.users))]
            if user.reg_ts >= t or not user.cards:
                continue
            fen = max(1_00, lognormal_fen(rng, median, 0.7))
            who = base(user.uid, user.devices[0], user.ips[0], user.city)
            body = {"type": "payment", **who, "card": user.cards[0], "merchant": merchant}
            w.em.emit(t, {**body, "amount": yuan(fen)})


def _collusion_refund(
    c: Campaign, v: User, seq: int, t: int, card: Body, merchant: Body, fen: int
) -> None:
    rng = c.w.rng
    ip = c.w.merchants.api_ip.get(merchant["id"]) or attacker_ip(rng)
    who = base(v.uid, None, ip, None)
    amount = fen if rng.random() < 0.4 else max(1_00, fen * rng.randint(10, 95) // 100)
    body = {"type": "refund", **who, "card": card, "merchant": merchant, "amount": yuan(amount)}
    c.emit(t + rng.randint(HOUR, 3 * DAY), c.w.em.ref(body, seq))


# --- 6. Fake customer service -------------------------------------------------------------


def fake_customer_service(c: Campaign, victims: Victims) -> None:
    """A fake 'customer service' call after a real order.

    Tactics: codes read aloud to the attacker's device; three (or more) wrong codes then
    another card; a coached victim borrowing, then transferring on their own phone; the
    fake agent draining the session on their own device in small payments under the bank's
    code threshold over a session or three; a coached victim buying vouchers and paying
    "guarantee" orders on their own phone over one or two calls; the
    victim paying on their own device under instruction (the attacker,
    through the victim, passes sms_otp, face and in_app_confirm); split payments just under
    a limit (a per-campaign threshold) over one or two days.
    """
    w, rng, tactic = c.w, c.w.rng, c.tactic
    day, _ = _start(w, 7)
    v = victims.draw(w.day_start(day))
    home = base(v.uid, v.devices[0], v.ips[0], v.city)
    t_order = w.at_hour(day, 9, 22)
    payment(w, v, t_order, home, "ecommerce")
    t = t_order + rng.randint(HOUR, 6 * DAY)
    if tactic == "victim_own_device":
        c.passes(frozenset({"sms_otp", "face", "in_app_confirm"}))
        _own_device(c, v, home, t)
        return
    if tactic == "coached_vouchers_own_phone":
        c.passes(frozenset({"sms_otp", "face", "in_app_confirm"}))
        _coached_vouchers(c, v, home, t)
        return
    if tactic == "coached_loan_then_transfer":
        c.passes(frozenset({"sms_otp", "face", "in_app_confirm"}))
        _coached_borrow_and_send(c, v, home, t)
        return
    if tactic == "screen_share_safe_account":
        c.passes(frozenset({"sms_otp", "face", "in_app_confirm"}))
        _screen_share_safe_account(c, v, home, t)
        return
    if tactic == "remote_app_compensation_orders":
        c.passes(frozenset({"sms_otp", "face", "in_app_confirm"}))
        _remote_app_orders(c, v, home, t)
        return
    dev, ip, city = _outsider(rng, v.city, rng.choice((None, None, "web")))
    who = base(v.uid, dev, ip, city)
    t = c.otp(t, who, v.phone, "login", delay=(20, 120))
    c.emit(t + 2, {"type": "login", **who, "method": "sms", "success": True})
    if rng.random() < 0.12:
        return  # the victim grew suspicious and hung up
    cats = ("transfer_service", "gift_card", "virtual_goods", "ecommerce")
    if tactic == "drip_under_code_threshold":
        _drip_under_code_threshold(c, v, who, t)
        return
    if tactic == "split_under_limits":
        _split_payments(c, v, who, t, cats)
        return
    cards = list(v.cards)
    if tactic == "wrong_codes_then_card":
        for _ in range(rng.randint(3, 4)):
            t = c.otp(t + rng.randint(20, 150), who, v.phone, "payment", False, (20, 90))
        if len(cards) == 1 or rng.random() < 0.4:
            cards.append(make_pan(rng, credit=rng.random() < 0.3))
            t = c.otp(t + rng.randint(30, 240), who, v.phone, "card_bind", delay=(15, 60))
            c.emit(t + 2, {"type": "card_bind", **who, "card": cards[-1], "phone": v.phone})
        cards = cards[1:][-2:]
    balance = v.balance_fen
    for card in cards[: rng.randint(1, 2)]:
        fen = max(300_00, int(balance * rng.uniform(0.6, 1.0)))
        fen = shape(rng, min(fen, w.cfg.daily_limit_fen - 1_00), _style(rng))
        t = c.otp(t + rng.randint(20, 180), who, v.phone, "payment", delay=(15, 90))
        body = {
            "type": "payment",
            **who,
            "card": card,
            "merchant": w.merchants.pick(rng, rng.choice(cats)),
        }
        c.money(t + rng.randint(1, 10), body, v, fen)
        balance = int(balance * rng.uniform(0.2, 0.8))


def _own_device(c: Campaign, v: User, home: Body, t: int) -> None:
    """The victim transfers to a 'safe account' or pays a 'refund fee' on their own phone."""
    w, rng = c.w, c.w.rng
    payee = _new_payee(rng)
    budget = int(v.balance_fen * rng.uniform(0.5, 1.0))
    for fen in _split(rng, budget, rng.randint(1, 3), _style(rng)):
        t += rng.randint(60, 900)
        if fen >= 200_000 or rng.random() < 0.3:
            t = c.otp(t, home, v.phone, "transfer", delay=(10, 90)) + rng.randint(1, 5)
        card = rng.choice(v.cards)
        if rng.random() < 0.7:
            body = {"type": "transfer", **home, "card": card, "payee": payee}
            c.money(t, body, v, fen)
        else:
            merchant = w.merchants.pick(rng, rng.choice(("transfer_service", "gift_card")))
            c.money(
                t, {"type": "payment", **home, "card": card, "merchant": merchant}, v, fen, True
            )


def _split_payments(c: Campaign, v: User, who: Body, t: int, cats: tuple[str, ...]) -> None:
    """Several payments each just under a limit the attacker believes in (no step-up)."""
    w, rng = c.w, c.w.rng
    limit = rng.choice((1_000_00, 2_000_00, 3_000_00, 5_000_00))
    days = rng.randint(1, 2)
    for d in range(days):
        if d:
            t = max(t + HOUR, w.day_start(w.day_of(t) + 1) + rng.randint(8 * HOUR, 22 * HOUR))
        for _ in range(rng.randint(2, 6)):
            t += rng.randint(30, 900)
            fen = limit - rng.choice((1_00, 50, 1, 10_00, 100_00, rng.randint(1, 30_000)))
            card = rng.choice(v.cards)
            merchant, venue = _cashout_merchant(w, cats)
            c.money(
                t, {"type": "payment", **who, "card": card, "merchant": merchant}, v, fen, venue
            )


GENERATORS: dict[str, Callable[[Campaign, Victims], None]] = {
    "sms_forwarding": sms_forwarding,
    "credential_stuffing": credential_stuffing,
    "phone_theft_takeover": phone_theft_takeover,
    "merchant_credential_leak": merchant_credential_leak,
    "cash_out_collusion": cash_out_collusion,
    "fake_customer_service": fake_customer_service,
}
# (share of attacked users, victims per campaign on average)
_MIX: dict[str, tuple[float, float]] = {
    "sms_forwarding": (0.2, 2.0),
    "credential_stuffing": (0.15, 4.0),
    "phone_theft_takeover": (0.1, 1.0),
    "merchant_credential_leak": (0.3, 60.0),
    "cash_out_collusion": (0.05, 3.0),
    "fake_customer_service": (0.2, 1.0),
}
assert tuple(GENERATORS) == SCENARIOS


def _coached_borrow_and_send(c: Campaign, v: User, home: Body, t: int) -> None:
    """The caller talks the victim into "clearing a loan record": on their own phone the
    victim often borrows first, then sends savings and loan to one or two "verification
    accounts" (new payees) in one to three transfers, each behind their own SMS code."""
    w, rng = c.w, c.w.rng
    total = int(v.balance_fen * rng.uniform(0.5, 0.95))
    if rng.random() < 0.6:
        lender = {"id": f"lender-{rng.randrange(5):02d}", "category": "loan"}
        fen = shape(rng, rng.randint(3_000_00, 50_000_00), _style(rng))
        t += rng.randint(10 * MINUTE, HOUR)
        apply = c.money(t, {"type": "loan_apply", **home, "merchant": lender}, v, fen)
        t += rng.randint(MINUTE, 30 * MINUTE)
        body = {"type": "loan_disburse", **home, "merchant": lender, "card": v.cards[0]}
        c.money(t, w.em.ref(body, apply), v, fen)
        total += fen
    payees = [_new_payee(rng) for _ in range(rng.randint(1, 2))]
    for fen in _split(rng, max(500_00, total), rng.randint(1, 3), _style(rng)):
        t += rng.randint(2 * MINUTE, 40 * MINUTE)
        t = c.otp(t, home, v.phone, "transfer", delay=(15, 90))
        body = {"type": "transfer", **home, "card": v.cards[0], "payee": rng.choice(payees)}
        c.money(t + rng.randint(2, 20), body, v, fen)


def _drip_under_code_threshold(c: Campaign, v: User, who: Body, t: int) -> None:
    """After the login code was read aloud, the fake agent keeps the session on their own
    device and drains it in small payments the bank lets through without a code (or, with
    a cap above that, each behind a code the victim reads out again), a session or two a
    few hours to a day apart, to cash-like goods and one or two mule accounts."""
    w, rng = c.w, c.w.rng
    with_codes = rng.random() < 0.3
    cap = rng.randint(2_200_00, 6_000_00) if with_codes else rng.randint(700_00, 1_990_00)
    budget = max(3 * cap, int(v.balance_fen * rng.uniform(0.6, 1.0)))
    mules = [_new_payee(rng) for _ in range(rng.randint(1, 2))]
    style = rng.choice(("odd", "odd", "near"))
    spent = 0
    for session in range(rng.choice((1, 2, 2, 3))):
        if session:
            t += rng.randint(3 * HOUR, 26 * HOUR)
            if rng.random() < 0.5:  # back on another network (a mobile proxy, a café)
                who = {**who, "ip": city_ip(rng, str(who.get("city") or v.city))}
        for _ in range(rng.randint(2, 6)):
            fen = min(
                cap - rng.randint(1_00, 40_00),
                shape(rng, int(cap * rng.uniform(0.45, 0.98)), style),
            )
            if spent + fen > budget:
                return
            t += rng.randint(3 * MINUTE, 50 * MINUTE)
            if with_codes:
                t = c.otp(t, who, v.phone, "payment", delay=(20, 120))
            if rng.random() < 0.35:
                body = {"type": "transfer", **who, "card": v.cards[0], "payee": rng.choice(mules)}
            else:
                cat = rng.choice(
                    ("gift_card", "mobile_topup", "virtual_goods", "ecommerce", "game")
                )
                body = {"type": "payment", **who, "card": rng.choice(v.cards)}
                body["merchant"] = w.merchants.pick(rng, cat)
            c.money(t + rng.randint(1, 15), body, v, fen)
            spent += fen


def _coached_vouchers(c: Campaign, v: User, home: Body, t: int) -> None:
    """The caller ("your account will be frozen", "a refund needs a deposit first") keeps
    the victim on the line while they buy vouchers and pay "guarantee" orders on their own
    phone, each behind their own SMS code, sometimes a transfer to a "refund account" too;
    a second call the next day asks for more."""
    w, rng = c.w, c.w.rng
    total = max(1_500_00, int(v.balance_fen * rng.uniform(0.4, 0.9)))
    refund_account = _new_payee(rng)
    calls = 2 if rng.random() < 0.4 else 1
    for call in range(calls):
        if call:
            t += rng.randint(12 * HOUR, 30 * HOUR)
        share = total if calls == 1 else total // 2
        for fen in _split(rng, share, rng.randint(2, 5), _style(rng)):
            t += rng.randint(4 * MINUTE, 45 * MINUTE)
            t = c.otp(t, home, v.phone, "payment", delay=(20, 150))
            if rng.random() < 0.25:
                body = {"type": "transfer", **home, "card": v.cards[0], "payee": refund_account}
            else:
                cat = rng.choice(("gift_card", "gift_card", "virtual_goods", "ecommerce"))
                body = {"type": "payment", **home, "card": rng.choice(v.cards)}
                body["merchant"] = w.merchants.pick(rng, cat)
            c.money(t + rng.randint(2, 20), body, v, fen)


def _screen_share_safe_account(c: Campaign, v: User, home: Body, t: int) -> None:
    """The "your account is under investigation, move it to a safe account" call: the
    victim shares their screen, so the caller sees every code, and on their own phone and
    network moves their savings to one or two new payees. Often a small "verification"
    transfer first; then two to four transfers each under a per-campaign cap the caller
    names ("the bank checks larger ones"), in one call or, for some, a second call the
    next day. Each transfer of 2,000 CNY or more is behind its own SMS code."""
    rng = c.w.rng
    total = max(2_000_00, int(v.balance_fen * rng.uniform(0.5, 0.95)))
    cap = rng.randint(2_000_00, 6_000_00)
    payees = [_new_payee(rng) for _ in range(rng.randint(1, 2))]
    t += rng.randint(5 * MINUTE, HOUR)
    if rng.random() < 0.5:
        body = {"type": "transfer", **home, "card": v.cards[0], "payee": payees[0]}
        c.money(t, body, v, rng.randint(1_00, 500_00))
    calls = 2 if rng.random() < 0.3 else 1
    sent = 0
    for call in range(calls):
        if call:
            t += rng.randint(14 * HOUR, 28 * HOUR)
        for _ in range(rng.randint(2, 4)):
            fen = min(cap - rng.randint(1, 300_00), int(cap * rng.uniform(0.55, 1.0)))
            fen = max(300_00, shape(rng, fen, rng.choice(("odd", "near"))))
            if sent + fen > total:
                break
            t += rng.randint(2 * MINUTE, 25 * MINUTE)
            if fen >= 2_000_00:
                t = c.otp(t, home, v.phone, "transfer", delay=(6, 40))
            body = {"type": "transfer", **home, "card": v.cards[0], "payee": rng.choice(payees)}
            c.money(t + rng.randint(2, 20), body, v, fen)
            sent += fen


def _remote_app_orders(c: Campaign, v: User, home: Body, t: int) -> None:
    """The "compensation for a lost parcel" call: the caller has the victim install a
    remote-control app and, on the victim's own phone and network, places "orders" at
    third-party payment platforms, e-commerce shops and gift-card sellers in quick
    succession, amounts around a per-campaign scale; codes (2,000 CNY or more) are read
    off the shared screen within seconds, and the victim looks at the camera when asked."""
    w, rng = c.w, c.w.rng
    scale = rng.randint(500_00, 4_000_00)
    budget = max(2_000_00, int(v.balance_fen * rng.uniform(0.5, 1.0)))
    style = rng.choice(("odd", "odd", "near"))
    spent = 0
    t += rng.randint(5 * MINUTE, HOUR)
    for _ in range(rng.randint(2, 6)):
        fen = shape(rng, int(scale * rng.uniform(0.5, 1.5)), style)
        if spent + fen > budget:
            break
        t += rng.randint(MINUTE, 8 * MINUTE)
        if fen >= 2_000_00:
            t = c.otp(t, home, v.phone, "payment", delay=(5, 25))
        cat = rng.choice(("transfer_service", "transfer_service", "ecommerce", "gift_card"))
        body = {"type": "payment", **home, "card": rng.choice(v.cards)}
        body["merchant"] = w.merchants.pick(rng, cat)
        c.money(t + rng.randint(2, 15), body, v, fen)
        spent += fen


def tactics(scenario: str, which: str) -> tuple[str, ...]:
    """The tactics a scenario's campaigns draw from on one side of the split."""
    tune, held = SPLIT[scenario]
    return tune + held if which == "all" else tune if which == "tuning" else held


def generate_attacks(w: World) -> list[Campaign]:
    """Mix in campaigns: attack_rate x users victims, split across enabled scenarios.

    Tactics go round-robin from a random offset, so n campaigns of a scenario cover
    min(n, family size) distinct variants."""
    cfg, rng = w.cfg, w.rng
    victims = Victims(w)
    campaigns: list[Campaign] = []
    if cfg.attack_rate <= 0:
        return campaigns
    for scenario in SCENARIOS:
        if scenario not in cfg.scenarios:
            continue
        share, per = _MIX[scenario]
        n = max(1, round(cfg.users * cfg.attack_rate * share / per))
        pool = tactics(scenario, cfg.variants)
        offset = rng.randrange(len(pool))
        for i in range(n):
            tactic = pool[(offset + i) % len(pool)]
            camp = Campaign(w, scenario, tactic, f"{scenario}-{cfg.seed}-{i:03d}")
            camp.passes(default_can_pass(scenario))
            GENERATORS[scenario](camp, victims)
            campaigns.append(camp)
    return campaigns


def feedback(w: World, campaigns: list[Campaign]) -> None:
    """Victims report fraud (hours to days later, some never); issuers raise chargebacks.

    About half the reports point at a payment at a shared venue when the victim had one (a
    gift-card shop, a leaked biller), so report-driven features meet honest customers of
    the same venue."""
    rng, cfg = w.rng, w.cfg
    for camp in campaigns:
        colluding = camp.scenario == "cash_out_collusion"
        first: dict[str, Hit] = {}
        venue: dict[str, Hit] = {}
        for hit in camp.hits:
            first.setdefault(hit.user.uid, hit)
            if hit.venue:
                venue.setdefault(hit.user.uid, hit)
        for uid in sorted(first):
            hit = first[uid]
            if uid in venue and rng.random() < 0.5:
                hit = venue[uid]
            if not colluding and rng.random() < cfg.report_rate:
                _report(w, hit)
            rate = cfg.chargeback_rate * (0.2 if colluding else 1.0)
            if hit.card is not None and rng.random() < rate:
                t = hit.ts + rng.randint(3 * DAY, 20 * DAY)
                if t < w.end_ts:
                    body = {
                        "type": "chargeback",
                        "user_id": uid,
                        "card": hit.card,
                        "amount": yuan(hit.amount),
                    }
                    w.em.emit(t, w.em.ref(body, hit.seq))


def _report(w: World, hit: Hit) -> None:
    rng = w.rng
    r = rng.random()
    delay = (
        rng.randint(HOUR, DAY)
        if r < 0.4
        else rng.randint(DAY, 7 * DAY)
        if r < 0.9
        else rng.randint(7 * DAY, 30 * DAY)
    )
    t = hit.ts + delay
    if t >= w.end_ts:
        return
    v = hit.user
    who = base(v.uid, v.devices[0], v.ips[0], v.city)
    if rng.random() < 0.3:
        who["channel"] = "phone"
    reason = "unauthorized" if rng.random() < 0.8 else "unrecognized"
    body = {"type": "fraud_report", **who, "attrs": {"reason": reason}}
    w.em.emit(t, w.em.ref(body, hit.seq))
