"""Shared simulation state and the small event builders both legit and attack code use."""

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import accumulate

from payguard.sim.config import SimConfig
from payguard.sim.population import Body, Device, Merchants, User, payday_of
from payguard.sim.writer import Emitter

CST = timezone(timedelta(hours=8))
DAY = 86_400
HOUR = 3_600
MINUTE = 60

# Relative activity per local hour: quiet at night, lunch and evening peaks.
_HOURS_DAY = (1, 0.5, 0.3, 0.2, 0.2, 0.4, 1.5, 4, 6, 6, 6, 7, 9, 7, 6, 6, 6, 7, 8, 9, 10, 9, 6, 3)
_HOURS_OWL = (6, 5, 3, 1.5, 0.6, 0.3, 0.3, 0.8, 2, 3, 4, 5, 6, 5, 5, 5, 5, 6, 7, 8, 9, 10, 10, 8)
_HOURS_STUDENT = (7, 5, 2, 0.5, 0.2, 0.1, 0.3, 2, 2, 1, 1, 2, 7, 4, 2, 2, 3, 6, 8, 9, 10, 10, 10, 9)
# Night-shift workers (nurses, drivers, guards): awake and paying 22:00-07:00.
_HOURS_NIGHT = (9, 9, 8, 8, 7, 7, 6, 4, 2, 0.5, 0.3, 0.3, 0.3, 0.5, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9)


def yuan(fen: int) -> str:
    """Integer fen to the contract's decimal-string amount (formatted only when building)."""
    return f"{fen // 100}.{fen % 100:02d}"


@dataclass(slots=True)
class World:
    """Everything a generator needs: config, the one RNG stream, the buffer, the population."""

    cfg: SimConfig
    rng: random.Random
    em: Emitter
    merchants: Merchants
    start_ts: int
    end_ts: int
    users: list[User] = field(default_factory=list)
    day_cum: list[list[float]] = field(default_factory=list)
    hour_cum: list[list[float]] = field(default_factory=list)
    used_uids: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, cfg: SimConfig, rng: random.Random, merchants: Merchants) -> "World":
        start = datetime(cfg.start.year, cfg.start.month, cfg.start.day, tzinfo=CST)
        start_ts = int(start.timestamp())
        world = cls(cfg, rng, Emitter(), merchants, start_ts, start_ts + cfg.days * DAY)
        world.hour_cum = [
            list(accumulate(h)) for h in (_HOURS_DAY, _HOURS_OWL, _HOURS_STUDENT, _HOURS_NIGHT)
        ]
        world.day_cum = [world._day_weights(payday) for payday in (1, 5, 10, 15, 20, 25)]
        return world

    def _day_weights(self, payday: int) -> list[float]:
        """Weekly cycle (busier weekends) times a payday bump lasting three days."""
        weights = []
        for d in range(self.cfg.days):
            day = self.cfg.start + timedelta(days=d)
            w = 1.15 if day.weekday() >= 5 else 1.0
            if 0 <= day.day - payday < 3:
                w *= 1.5
            weights.append(w)
        return list(accumulate(weights))

    def new_uid(self) -> str:
        while True:
            uid = f"u{self.rng.randrange(10**8, 10**9)}"
            if uid not in self.used_uids:
                self.used_uids.add(uid)
                return uid

    def poisson(self, lam: float) -> int:
        if lam > 30:
            return max(0, round(self.rng.gauss(lam, math.sqrt(lam))))
        limit = math.exp(-lam)
        k, p = 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k

    def day_start(self, day: int) -> int:
        return self.start_ts + day * DAY

    def session_time(self, user: User) -> int:
        """A session start drawn from the user's weekly/payday and daily rhythm."""
        rng = self.rng
        cum = self.day_cum[user.payday]
        day = rng.choices(range(len(cum)), cum_weights=cum)[0]
        hour = rng.choices(range(24), cum_weights=self.hour_cum[user.rhythm])[0]
        return self.start_ts + day * DAY + hour * HOUR + rng.randrange(HOUR)

    def at_hour(self, day: int, lo: float, hi: float) -> int:
        """A time on window day `day` between local hours lo and hi (hi may exceed 24)."""
        return self.day_start(day) + int(self.rng.uniform(lo, hi) * HOUR)

    def day_of(self, ts: int) -> int:
        """Window day (0-based) of epoch second `ts`."""
        return (ts - self.start_ts) // DAY

    def payday(self, user: User) -> int:
        return payday_of(user)


def base(user_id: str | None, dev: Device | None, ip: str, city: str | None) -> Body:
    """The who/where part of an event; device-less for server-to-server calls."""
    body: Body = {"user_id": user_id}
    if dev is not None:
        body["device_id"] = dev.id
        body["ip"] = ip
        body["user_agent"] = dev.ua
        body["channel"] = dev.channel
    else:
        body["ip"] = ip
        body["channel"] = "api"
    if city is not None:
        body["city"] = city
    if user_id is None:
        del body["user_id"]
    return body


def otp_pair(
    w: World,
    t: int,
    who: Body,
    phone: str,
    purpose: str,
    delay: tuple[int, int] = (8, 60),
    success: bool = True,
) -> tuple[int, int]:
    """otp_send then otp_verify from the same device `delay` seconds later.

    Returns (time of the verify, sequence of the verify).
    """
    send = w.em.emit(
        t,
        {"type": "otp_send", **who, "phone": phone, "method": "sms", "attrs": {"purpose": purpose}},
    )
    t2 = t + w.rng.randint(*delay)
    verify = {"type": "otp_verify", **who, "method": "sms", "success": success}
    return t2, w.em.emit(t2, w.em.ref(verify, send))


def carrier(w: World, t: int, kind: str, phone: str, **attrs: str) -> int:
    """A carrier signal (CAMARA-style): keyed by phone only, the carrier knows no user id."""
    body: Body = {"type": kind, "phone": phone}
    if attrs:
        body["attrs"] = dict(attrs)
    return w.em.emit(t, body)
