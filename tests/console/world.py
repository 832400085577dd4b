"""A small world for the console's browser tests: a few days of simulated customers with
phone-theft campaigns (the simulator, seeded), ending just before `LIVE_MS`, and a phone
theft that happens at `LIVE_MS` to one of its customers, so its hold (24 h) is still held
when the analyst looks at it.

`LIVE_MS` is "now" during a Chinese afternoon, else the last 17:00 in China (at most 17
hours ago): the default ruleset reads the hour of the day (night rules), so a theft at the
wall clock's now would be decided one way at 3 p.m. and another at 2 a.m. in China, and the
test would pass or fail with the time it runs.

`history(...)` writes the simulated events; `live_theft(...)` returns the thief's events
against a victim picked from them: the SIM swapped, a password reset by SMS and a login on
the thief's device, then transfers to new payees with the victim's card.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec

from payguard.sim import SimConfig, simulate

MINUTE_MS = 60_000
CHINA = timezone(timedelta(hours=8))


def live_moment_ms(now: datetime | None = None) -> int:
    """Now if it is between 10:00 and 18:00 in China, else the last 17:00 there."""
    local = (now or datetime.now(UTC)).astimezone(CHINA)
    if not 10 <= local.hour < 18:
        local = local.replace(hour=17, minute=0, second=0, microsecond=0)
        if local > (now or datetime.now(UTC)):
            local -= timedelta(days=1)
    return int(local.timestamp() * 1000)


LIVE_MS = live_moment_ms()
"""When the live theft happens (taken once, so the history's end and the theft agree)."""


def history(events: Path, labels: Path, *, users: int = 250, days: int = 3, seed: int = 5) -> None:
    """Simulated customers and phone thefts for `days` days ending yesterday; a campaign's
    cash-out may run into the next nights, so events from `LIVE_MS` on are dropped."""
    today = datetime.now(UTC).date()
    cfg = SimConfig(
        users=users,
        days=days,
        seed=seed,
        attack_rate=0.03,
        start=today - timedelta(days=days + 1),
        scenarios=("phone_theft_takeover",),
    )
    simulate(cfg, events, labels)
    cutoff = datetime.fromtimestamp(LIVE_MS / 1000, UTC) - timedelta(minutes=5)
    kept = [
        line
        for line in events.read_bytes().splitlines()
        if datetime.fromisoformat(msgspec.json.decode(line)["ts"]) < cutoff
    ]
    events.write_bytes(b"\n".join(kept) + b"\n")


@dataclass(frozen=True)
class Victim:
    user_id: str
    phone: str
    card: dict[str, Any]
    city: str
    device_id: str
    ip: str
    agent: str


def pick_victim(events: Path) -> Victim:
    """A customer with a phone and a card bound, who was not attacked in the history."""
    phones: dict[str, str] = {}
    cities: dict[str, str] = {}
    attacked: set[str] = set()
    for line in events.read_bytes().splitlines():
        body = msgspec.json.decode(line)
        user = body.get("user_id")
        if body["type"] == "register" and user is not None:
            phones[user], cities[user] = body["phone"], body.get("city", "Shanghai")
        if body["type"] in ("sim_swap", "password_reset"):
            attacked.add(user or body.get("phone", ""))
        unattacked = user in phones and user not in attacked and phones[user] not in attacked
        if body["type"] == "card_bind" and unattacked and body["card"]["number"][:2] == "62":
            return Victim(
                user, phones[user], body["card"], cities[user],
                body["device_id"], body["ip"], body["user_agent"],
            )  # fmt: skip
    raise AssertionError("the simulated history has no customer with a card")


def live_theft(victim: Victim, now_ms: int | None = None) -> list[dict[str, Any]]:
    """The thief's events, ending about `LIVE_MS`."""
    now = now_ms if now_ms is not None else LIVE_MS
    start = now - 40 * MINUTE_MS
    thief = {
        "user_id": victim.user_id,
        "device_id": "thief-handset-01",
        "ip": "117.136.1.77",
        "city": victim.city,
        "channel": "app",
        "user_agent": "PayGuardApp/5.2.0 (Android 14)",
    }

    def at(minutes: float, **body: Any) -> dict[str, Any]:
        ts = start + int(minutes * MINUTE_MS)
        return {"event_id": f"live-{victim.user_id}-{len(sequence)}", "ts": ts, **body}

    own = {**thief, "device_id": victim.device_id, "ip": victim.ip, "user_agent": victim.agent}
    sequence: list[dict[str, Any]] = []
    sequence.append(at(0, type="sim_swap", phone=victim.phone))
    # the owner, unaware, pays a new payee from their own phone: held (cooling-off)
    sequence.append(at(4, type="transfer", amount="2600.00", card=victim.card, **own,
                       payee={"id": "landlord-77", "name": "Li Na"}))  # fmt: skip
    sequence.append(at(10, type="password_reset", method="sms", success=True, **thief))
    sequence.append(at(12, type="login", method="password", success=True, **thief))
    for n, amount in enumerate(("4800.00", "3900.00")):
        payee = {"id": f"mule-{n}", "name": "Zhang Wei"}
        sequence.append(
            at(15 + 6 * n, type="transfer", amount=amount, card=victim.card, payee=payee, **thief)
        )
    return sequence


def next_payment(victim: Victim, n: int = 0) -> dict[str, Any]:
    """A payment with the victim's card right now (after it went on the deny list)."""
    return {
        "event_id": f"after-deny-{victim.user_id}-{n}",
        "type": "payment",
        "ts": time.time_ns() // 1_000_000,
        "user_id": victim.user_id,
        "device_id": "thief-handset-01",
        "ip": "117.136.1.77",
        "channel": "app",
        "amount": "1999.00",
        "card": victim.card,
        "merchant": {"id": "m-giftcards"},
    }
