"""The six attack campaigns, one generator each, plus the victims' later feedback.

Every generator varies timing, amounts and the number of steps, sometimes stops part-way
(partial chains) and sometimes runs slowly over several days, so that rules are tuned
against behaviour rather than one fixed script. Attack events are labelled through the
`Campaign`, never inside the event itself.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from payguard.sim.config import SCENARIOS
from payguard.sim.legit import payment
from payguard.sim.population import (
    Body,
    Device,
    User,
    attacker_ip,
    city_ip,
    make_device,
    make_name,
    make_pan,
    pick_city,
)
from payguard.sim.world import DAY, HOUR, MINUTE, World, base, yuan

_CASHOUT_CATS = ("virtual_goods", "gift_card", "gift_card", "mobile_topup", "game")


@dataclass(slots=True)
class Hit:
    """An attack money event on a victim: what a later fraud_report/chargeback refers to."""

    user: User
    seq: int
    ts: int
    card: Body | None
    amount: int


@dataclass(slots=True)
class Campaign:
    """One attacker operation: labels every event it emits with its id and scenario."""

    w: World
    scenario: str
    cid: str
    hits: list[Hit] = field(default_factory=list)
    last_ts: int = 0

    def emit(self, t: int, body: Body) -> int:
        seq = self.w.em.emit(t, body)
        self.w.em.labels[seq] = (self.cid, self.scenario)
        self.last_ts = max(self.last_ts, t)
        return seq

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

    def mark_reads_otp(self, since: int) -> None:
        """Label this campaign's events from sequence `since` on as 'victim reads codes out'."""
        em = self.w.em
        em.reads_otp.update(s for s in range(since, em.next_seq) if s in em.labels)

    def money(self, t: int, body: Body, user: User, amount: int) -> int:
        body["amount"] = yuan(amount)
        seq = self.emit(t, body)
        self.hits.append(Hit(user, seq, t, body.get("card"), amount))
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


def _start(w: World, span_days: int) -> tuple[int, int]:
    """A campaign start day leaving room for `span_days` of activity; returns (day, ts)."""
    day = w.rng.randrange(max(1, w.cfg.days - span_days))
    return day, w.day_start(day)


def _outsider(rng: random.Random, home: str) -> tuple[Device, str, str]:
    """Attacker device, IP and city: an emulator or second-hand phone far from the victim."""
    dev = make_device(rng, "emulator" if rng.random() < 0.4 else "phone")
    city = pick_city(rng, other_than=home)
    ip = attacker_ip(rng) if rng.random() < 0.5 else city_ip(rng, city)
    return dev, ip, city


def _split_under(rng: random.Random, limit: int, parts: int) -> list[int]:
    """Amounts summing to just under a daily limit, in 'x99' or round-hundred shapes."""
    budget = limit - rng.randint(1, 30) * 100_00 // 10
    cuts = sorted(rng.random() for _ in range(parts - 1))
    shares = [b - a for a, b in zip([0.0, *cuts], [*cuts, 1.0], strict=True)]
    out = []
    for share in shares:
        fen = max(100_00, int(budget * share) // 100_00 * 100_00)
        if rng.random() < 0.5:
            fen -= 1_00
        out.append(fen)
    while sum(out) >= limit:
        out[out.index(max(out))] -= 100_00
    return [f for f in out if f > 0]


def sms_forwarding(c: Campaign, victims: Victims) -> None:
    """Password known, OTPs forwarded by an SMS-backup service; drain just under the limit.

    Varies: the optional carrier sms_forward_set signal, 1-4 payments per day, a slow variant
    spread over 2-4 days, probing-only partial chains, emulator vs. phone, proxy vs. hosting.
    """
    w, rng = c.w, c.w.rng
    slow = rng.random() < 0.3
    n_days = rng.randint(2, 4) if slow else 1
    day, _ = _start(w, n_days + 1)
    for _ in range(rng.randint(1, 3)):
        v = victims.draw(w.day_start(day))
        dev, ip, city = _outsider(rng, v.city)
        who = base(v.uid, dev, ip, city)
        t = w.at_hour(day, 0, 24) if not slow else w.at_hour(day, 0, 6)
        if rng.random() < 0.6:
            c.emit(
                t - rng.randint(10 * MINUTE, 2 * DAY), {"type": "sms_forward_set", "phone": v.phone}
            )
        if rng.random() < 0.15:
            c.emit(t, {"type": "login", **who, "method": "password", "success": False})
            t += rng.randint(20, 300)
        c.emit(t, {"type": "login", **who, "method": "password", "success": True})
        if rng.random() < 0.12:
            continue  # probing only: checks the account works, comes back another time
        for d in range(n_days):
            if d:
                t = w.at_hour(day + d, 0, 7) if rng.random() < 0.6 else w.at_hour(day + d, 9, 23)
                c.emit(t, {"type": "login", **who, "method": "password", "success": True})
            parts = rng.randint(1, 2) if slow else rng.randint(1, 4)
            for fen in _split_under(rng, w.cfg.daily_limit_fen, parts):
                t = c.otp(t + rng.randint(20, 400), who, v.phone, "payment", delay=(12, 45))
                cat = rng.choice(_CASHOUT_CATS)
                body = {
                    "type": "payment",
                    **who,
                    "card": rng.choice(v.cards),
                    "merchant": w.merchants.pick(rng, cat),
                }
                c.money(t + rng.randint(1, 8), body, v, fen)


def credential_stuffing(c: Campaign, victims: Victims) -> None:
    """Leaked password lists replayed from an IP/device pool; a few logins succeed.

    Varies: pool size, fast bursts vs. low-and-slow attempts over a day, non-existent user
    ids, the cash-out (gold buy/redeem churn or a transfer to a new payee) and whether the
    victim reads the OTP to the caller (if not, the chain stops at a failed verify).
    """
    w, rng = c.w, c.w.rng
    pool = [make_device(rng, "emulator") for _ in range(rng.randint(2, 8))]
    ips = [attacker_ip(rng) for _ in range(rng.randint(3, 40))]
    cities = [pick_city(rng) for _ in ips]
    slow = rng.random() < 0.35
    day, _ = _start(w, 3)
    t = w.at_hour(day, 0, 24)
    n_success = rng.randint(2, 6)
    attempts = n_success * rng.randint(20, 60)
    winners = {rng.randrange(attempts) for _ in range(n_success)}
    for i in range(attempts):
        t += rng.randint(60, 900) if slow else rng.randint(1, 20)
        k = rng.randrange(len(ips))
        if i in winners:
            v = victims.draw(t)
            who = base(v.uid, rng.choice(pool), ips[k], cities[k])
            login = c.emit(t, {"type": "login", **who, "method": "password", "success": True})
            if _stuffing_cashout(c, v, who, t + rng.randint(MINUTE, 6 * HOUR)):
                c.mark_reads_otp(login)
            continue
        uid = w.users[rng.randrange(len(w.users))].uid if rng.random() < 0.7 else w.new_uid()
        who = base(uid, rng.choice(pool), ips[k], cities[k])
        for _ in range(1 if rng.random() < 0.8 else 2):
            c.emit(t, {"type": "login", **who, "method": "password", "success": False})
            t += rng.randint(1, 5)


def _stuffing_cashout(c: Campaign, v: User, who: Body, t: int) -> bool:
    """Gold churn and/or a transfer; returns whether this victim reads codes to the caller."""
    rng = c.w.rng
    reads_code = rng.random() < 0.35
    if rng.random() < 0.5:
        gold = {"id": f"gold-{rng.randrange(3):02d}", "category": "precious_metal"}
        total = 0
        for _ in range(rng.randint(1, 4)):
            fen = rng.randint(20, 200) * 100_00
            t += rng.randint(30, 600)
            body = {"type": "investment_buy", **who, "card": v.cards[0], "merchant": gold}
            c.money(t, body, v, fen)
            total += fen
        t += rng.randint(5 * MINUTE, 3 * HOUR)
        c.money(t, {"type": "investment_redeem", **who, "merchant": gold}, v, total)
        if rng.random() < 0.5:
            return reads_code
    payee = {
        "id": f"p{rng.getrandbits(48):012x}",
        "card": make_pan(rng, False),
        "name": make_name(rng),
    }
    t = c.otp(t + rng.randint(30, 300), who, v.phone, "transfer", reads_code, (15, 90))
    if not reads_code:
        if rng.random() < 0.5:
            c.otp(t + rng.randint(30, 200), who, v.phone, "transfer", False, (15, 90))
        return False
    fen = min(v.balance_fen, 5_000_000) // 100_00 * 100_00 or 500_00
    body = {"type": "transfer", **who, "card": v.cards[0], "payee": payee}
    c.money(t + rng.randint(2, 20), body, v, fen)
    return True


def phone_theft_takeover(c: Campaign, victims: Victims) -> None:
    """Stolen phone: SIM and SMS in the thief's hands, then everything tied to the number.

    Varies: sim_swap vs. the victim's own unlocked handset, 0 to dozens of line
    suspend/resume cycles, new accounts on the victim's phone and ID, card-bind bursts,
    3-5 a.m. loans, cash-out mix, hiding (card_unbind, call_forward_set), a partial chain
    that ends once the owner's suspension sticks, and a second night.
    """
    w, rng = c.w, c.w.rng
    day, _ = _start(w, 3)
    v = victims.draw(w.day_start(day))
    t = w.at_hour(day, 21, 26)
    if rng.random() < 0.6:
        dev = make_device(rng)
        c.emit(t, {"type": "sim_swap", "phone": v.phone})
    else:
        dev = v.devices[0]
    who = base(v.uid, dev, city_ip(rng, v.city), v.city)
    if rng.random() < 0.4:
        c.emit(t + rng.randint(60, 900), {"type": "call_forward_set", "phone": v.phone})
    t = _suspend_cycles(c, v, t + rng.randint(10 * MINUTE, 2 * HOUR))
    t = c.otp(t + rng.randint(60, 600), who, v.phone, "password_reset", delay=(5, 30))
    c.emit(t + 3, {"type": "password_reset", **who, "method": "sms", "success": True})
    t += rng.randint(20, 120)
    c.emit(t, {"type": "login", **who, "method": "password", "success": True})
    if rng.random() < 0.2:
        return  # the owner's loss report stuck before any money moved
    accounts = [v.uid] + [_fake_account(c, v, dev, who, t) for _ in range(rng.randint(0, 3))]
    t += rng.randint(10 * MINUTE, HOUR)
    bound = _bind_burst(c, v, accounts, dev, who, t)
    t = bound[-1][0] if bound else t
    night = w.at_hour(day + 1, 3, 5)
    t = night if t < night else w.at_hour(day + 2, 3, 5)
    for n in range(2 if rng.random() < 0.3 else 1):
        t = _theft_cashout(c, v, accounts, dev, who, t + n * DAY)
    for _, uid, card in bound:
        if uid != v.uid and rng.random() < 0.7:
            t += rng.randint(30, 300)
            c.emit(t, {"type": "card_unbind", **base(uid, dev, who["ip"], v.city), "card": card})


def _suspend_cycles(c: Campaign, v: User, t: int) -> int:
    rng = c.w.rng
    r = rng.random()
    cycles = 0 if r < 0.2 else rng.randint(1, 3) if r < 0.75 else rng.randint(5, 40)
    for _ in range(cycles):
        c.emit(t, {"type": "line_suspend", "phone": v.phone})
        t += rng.randint(MINUTE, 8 * MINUTE if cycles > 3 else 20 * MINUTE)
        c.emit(t, {"type": "line_resume", "phone": v.phone})
        t += rng.randint(MINUTE, 6 * MINUTE if cycles > 3 else 30 * MINUTE)
    return t


def _fake_account(c: Campaign, v: User, dev: Device, who: Body, t: int) -> str:
    """A NEW account registered on the victim's phone and ID, KYC passed by face."""
    rng = c.w.rng
    uid = c.w.new_uid()
    mine = {**who, "user_id": uid}
    t += rng.randint(5 * MINUTE, 40 * MINUTE)
    t = c.otp(t, mine, v.phone, "register", delay=(5, 30))
    c.emit(t + 2, {"type": "register", **mine, "phone": v.phone})
    c.emit(
        t + rng.randint(30, 200),
        {"type": "kyc_verify", **mine, "id_number": v.id_number, "method": "face", "success": True},
    )
    return uid


def _bind_burst(
    c: Campaign, v: User, accounts: list[str], dev: Device, who: Body, t: int
) -> list[tuple[int, str, Body]]:
    rng = c.w.rng
    bound = []
    for card in v.cards:
        uid = rng.choice(accounts)
        mine = base(uid, dev, who["ip"], v.city)
        t = c.otp(t + rng.randint(10, 90), mine, v.phone, "card_bind", delay=(4, 20))
        c.emit(t + 2, {"type": "card_bind", **mine, "card": card, "phone": v.phone})
        bound.append((t + 2, uid, card))
    return bound


def _theft_cashout(
    c: Campaign, v: User, accounts: list[str], dev: Device, who: Body, t: int
) -> int:
    """3-5 a.m. loans disbursed to the cards, then gift cards, top-ups and mule transfers."""
    w, rng = c.w, c.w.rng
    for uid in accounts:
        if rng.random() < 0.6:
            mine = base(uid, dev, who["ip"], v.city)
            lender = {"id": f"lender-{rng.randrange(5):02d}", "category": "loan"}
            fen = rng.randint(20, 200) * 1_000_00
            apply = c.money(t, {"type": "loan_apply", **mine, "merchant": lender}, v, fen)
            t += rng.randint(MINUTE, 30 * MINUTE)
            body = {"type": "loan_disburse", **mine, "merchant": lender, "card": v.cards[0]}
            c.money(t, w.em.ref(body, apply), v, fen)
    for _ in range(rng.randint(2, 8)):
        t += rng.randint(20, 400)
        if rng.random() < 0.7:
            cat = rng.choice(_CASHOUT_CATS)
            body = {
                "type": "payment",
                **who,
                "card": rng.choice(v.cards),
                "merchant": w.merchants.pick(rng, cat),
            }
            c.money(t, body, v, rng.randint(5, 50) * 100_00 - rng.choice((0, 1_00)))
        else:
            payee = {"id": f"p{rng.getrandbits(48):012x}", "card": make_pan(rng, False)}
            body = {"type": "transfer", **who, "card": rng.choice(v.cards), "payee": payee}
            c.money(t, body, v, rng.randint(10, 200) * 100_00)
    return t


def merchant_credential_leak(c: Campaign, victims: Victims) -> None:
    """Leaked merchant API keys: server-to-server debits of many payers' cards in a burst.

    Varies: burst (seconds apart) vs. slow night-time drip over two nights, a fixed price vs.
    random amounts, number of payers and of new source IPs, occasional double debits.
    """
    w, rng = c.w, c.w.rng
    cat = rng.choice(("ecommerce", "virtual_goods", "other", "food"))
    merchant = w.merchants.by_cat[cat][rng.randrange(min(40, len(w.merchants.by_cat[cat])))]
    ips = [attacker_ip(rng) for _ in range(rng.randint(2, 8))]
    ua = rng.choice(("python-requests/2.31.0", "Apache-HttpClient/4.5.13 (Java/1.8.0_292)"))
    slow = rng.random() < 0.3
    day, _ = _start(w, 3)
    t = w.at_hour(day, 0, 5) if slow else w.at_hour(day, 0, 24)
    fixed = rng.choice((99_00, 499_00, 1999_00, 0, 0))
    for i in range(rng.randint(15, 120)):
        t += rng.randint(2 * MINUTE, 20 * MINUTE) if slow else rng.randint(1, 20)
        if slow and i == 40:
            t = w.at_hour(day + 1, 0, 4)
        v = victims.draw(t)
        who = base(v.uid, None, rng.choice(ips), None)
        who["user_agent"] = ua
        for _ in range(2 if rng.random() < 0.08 else 1):
            fen = fixed or rng.randint(50, 3000) * 100 + rng.choice((0, 0, 99))
            body = {"type": "payment", **who, "card": v.cards[0], "merchant": merchant}
            c.money(t, body, v, fen)
            t += rng.randint(1, 5)


def cash_out_collusion(c: Campaign, victims: Victims) -> None:
    """Credit-card cash-out through a young colluding merchant: round amounts, refunds.

    Varies: 2-4 cardholders, 3-15 days, 0-3 payments a day, refund share, amount ladder,
    and whether a fresh credit card is bound first.
    """
    w, rng = c.w, c.w.rng
    cat = rng.choice(("other", "ecommerce", "precious_metal", "gift_card"))
    merchant = {"id": f"m-{cat[:4]}-n{rng.getrandbits(32):08x}", "category": cat}
    span = rng.randint(3, 15)
    day, _ = _start(w, span)
    ladder = rng.choice(((3000, 5000, 8000), (9800, 9900, 10000), (5000, 10000, 20000)))
    for _ in range(rng.randint(2, 4)):
        v = victims.draw(w.day_start(day), need_credit=rng.random() < 0.7)
        who = base(v.uid, v.devices[0], v.ips[0], v.city)
        credit = [card for card in v.cards if card["kind"] == "credit"]
        if not credit:
            card = make_pan(rng, credit=True)
            t = w.at_hour(day, 9, 22)
            t = c.otp(t, who, v.phone, "card_bind", delay=(8, 40))
            c.emit(t + 3, {"type": "card_bind", **who, "card": card, "phone": v.phone})
            credit = [card]
        for d in range(span):
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                t = w.at_hour(day + d, 8, 24)
                fen = rng.choice(ladder) * 100
                body = {"type": "payment", **who, "card": credit[0], "merchant": merchant}
                seq = c.money(t, body, v, fen)
                if rng.random() < 0.25:
                    _collusion_refund(c, v, seq, t, credit[0], merchant, fen)


def _collusion_refund(
    c: Campaign, v: User, seq: int, t: int, card: Body, merchant: Body, fen: int
) -> None:
    rng = c.w.rng
    who = base(v.uid, None, attacker_ip(rng), None)
    body = {"type": "refund", **who, "card": card, "merchant": merchant, "amount": yuan(fen)}
    c.emit(t + rng.randint(HOUR, 2 * DAY), c.w.em.ref(body, seq))


def fake_customer_service(c: Campaign, victims: Victims) -> None:
    """A fake 'customer service' call after a real order; the victim reads OTPs aloud.

    Varies: the days between the real order and the call, SMS vs. password login, OTP
    read-out failures, a second card (or one bound on the spot), amounts near the balance,
    and victims who hang up after the first code.
    """
    w, rng = c.w, c.w.rng
    day, _ = _start(w, 6)
    v = victims.draw(w.day_start(day))
    t_order = w.at_hour(day, 9, 22)
    payment(w, v, t_order, base(v.uid, v.devices[0], v.ips[0], v.city), "ecommerce")
    dev, ip, city = _outsider(rng, v.city)
    who = base(v.uid, dev, ip, city)
    t = t_order + rng.randint(HOUR, 5 * DAY)
    t = c.otp(t, who, v.phone, "login", delay=(20, 90))
    c.emit(t + 2, {"type": "login", **who, "method": "sms", "success": True})
    if rng.random() < 0.4:
        t = c.otp(t + rng.randint(20, 120), who, v.phone, "payment", False, (20, 60))
    if rng.random() < 0.15:
        return  # the victim grew suspicious and hung up
    balance = v.balance_fen
    cards = list(v.cards)
    if len(cards) == 1:
        cards.append(make_pan(rng, credit=False))
        t = c.otp(t + rng.randint(30, 180), who, v.phone, "card_bind", delay=(15, 60))
        c.emit(t + 2, {"type": "card_bind", **who, "card": cards[1], "phone": v.phone})
    for i, card in enumerate(cards[:2]):
        fen = max(500_00, balance - rng.randint(0, 400) * 100 - rng.randint(0, 99))
        fen = min(fen, w.cfg.daily_limit_fen - 1_00)
        if i and rng.random() < 0.5:
            t = c.otp(t + rng.randint(20, 120), who, v.phone, "payment", False, (20, 60))
        t = c.otp(t + rng.randint(20, 120), who, v.phone, "payment", delay=(15, 60))
        cat = rng.choice(("transfer_service", "gift_card", "virtual_goods", "ecommerce"))
        body = {"type": "payment", **who, "card": card, "merchant": w.merchants.pick(rng, cat)}
        c.money(t + rng.randint(1, 10), body, v, fen)
        balance = int(balance * rng.uniform(0.2, 0.8))


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


def generate_attacks(w: World) -> list[Campaign]:
    """Mix in campaigns: attack_rate x users victims, split across enabled scenarios."""
    cfg = w.cfg
    victims = Victims(w)
    campaigns: list[Campaign] = []
    if cfg.attack_rate <= 0:
        return campaigns
    for scenario in SCENARIOS:
        if scenario not in cfg.scenarios:
            continue
        share, per = _MIX[scenario]
        n = max(1, round(cfg.users * cfg.attack_rate * share / per))
        for i in range(n):
            camp = Campaign(w, scenario, f"{scenario}-{cfg.seed}-{i:03d}")
            GENERATORS[scenario](camp, victims)
            campaigns.append(camp)
    return campaigns


def feedback(w: World, campaigns: list[Campaign]) -> None:
    """Victims report fraud (hours to days later); issuers raise some chargebacks."""
    rng, cfg = w.rng, w.cfg
    for camp in campaigns:
        colluding = camp.scenario == "cash_out_collusion"
        seen: dict[str, Hit] = {}
        for hit in camp.hits:
            seen.setdefault(hit.user.uid, hit)
        for uid in sorted(seen):
            hit = seen[uid]
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
    delay = rng.randint(HOUR, DAY) if rng.random() < 0.4 else rng.randint(DAY, 7 * DAY)
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
