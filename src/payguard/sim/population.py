"""Identities and reference data: valid PII, cities, IP ranges, devices, merchants, users.

Everything a user needs (PANs, ID number, phone, devices) is generated once here so that the
per-event hot loop only picks among prebuilt dicts and strings. PANs carry real Chinese BIN
prefixes with a Luhn check digit, ID numbers carry a real region code, a valid birth date
and the GB 11643 check character, and phones use real mobile prefixes, so every value
passes the same validation the event edge applies.
"""

import math
import random
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

Body = dict[str, Any]

# (BIN, bank, kind, length)
BINS: tuple[tuple[str, str, str, int], ...] = (
    ("622202", "ICBC", "debit", 19),
    ("621700", "CCB", "debit", 19),
    ("622848", "ABC", "debit", 19),
    ("621661", "BOC", "debit", 19),
    ("622262", "BOCOM", "debit", 19),
    ("622588", "CMB", "debit", 16),
    ("621483", "CMB", "debit", 16),
    ("622155", "PSBC", "debit", 19),
    ("625965", "CMB", "credit", 16),
    ("625802", "CMB", "credit", 16),
    ("622575", "CMB", "credit", 16),
    ("625911", "ICBC", "credit", 16),
    ("625362", "CCB", "credit", 16),
    ("625907", "BOC", "credit", 16),
)
_DEBIT_BINS = tuple(b for b in BINS if b[2] == "debit")
_CREDIT_BINS = tuple(b for b in BINS if b[2] == "credit")

# fmt: off
MOBILE_PREFIXES: tuple[str, ...] = (
    "134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159", "182",
    "183", "187", "188", "130", "131", "132", "155", "156", "185", "186", "133", "153", "180",
    "181", "189", "177", "199", "166",
)
# fmt: on
"""China Mobile, China Unicom and China Telecom mobile prefixes (all pass phonenumbers)."""

# city -> (population weight, ID region codes, residential/mobile IPv4 first two octets)
CITIES: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    "Shanghai": (14, ("310101",), ("116.228", "101.80", "180.160", "223.104")),
    "Beijing": (13, ("110101", "110105"), ("123.112", "114.242", "111.197", "223.72")),
    "Shenzhen": (10, ("440305", "440304"), ("113.116", "119.123", "183.14", "223.73")),
    "Guangzhou": (10, ("440106", "440104"), ("113.108", "14.215", "183.6", "120.229")),
    "Hangzhou": (7, ("330106",), ("115.197", "122.224", "183.128", "112.17")),
    "Chengdu": (8, ("510107",), ("171.221", "182.148", "125.70", "223.87")),
    "Wuhan": (6, ("420106",), ("59.172", "111.172", "119.96", "223.104")),
    "Nanjing": (5, ("320102",), ("180.110", "58.213", "112.86", "114.222")),
    "Xi'an": (5, ("610113",), ("113.200", "124.115", "117.36", "223.88")),
    "Tianjin": (5, ("120101",), ("117.14", "60.25", "111.160", "221.196")),
    "Changsha": (4, ("430102",), ("175.8", "222.240", "113.246", "223.146")),
    "Zhengzhou": (4, ("410102",), ("171.8", "182.118", "123.52", "223.91")),
    "Qingdao": (3, ("370202",), ("27.220", "123.235", "112.224", "223.99")),
    "Xiamen": (3, ("350203",), ("117.25", "27.148", "120.36", "223.104")),
    "Shenyang": (3, ("210102",), ("124.93", "175.167", "113.230", "223.101")),
    "Ningbo": (3, ("330203",), ("115.231", "122.227", "60.190", "112.16")),
}
CITY_NAMES: tuple[str, ...] = tuple(CITIES)
CITY_CUM: list[float] = list(accumulate(c[0] for c in CITIES.values()))

# Hosting, proxy and overseas ranges attackers rent; a few residential proxies look local.
ATTACKER_IP_PREFIXES: tuple[str, ...] = (
    "47.96",
    "47.103",
    "39.105",
    "120.79",
    "101.132",
    "103.45",
    "103.216",
    "154.31",
    "45.128",
    "43.154",
    "8.210",
    "183.232",
)

_ANDROID_MODELS = ("V2217A", "PGT-AN10", "M2012K11AC", "PEEM00", "SM-S9110", "NOH-AN00")
_IOS_MODELS = ("iPhone14,3", "iPhone15,2", "iPhone13,2", "iPhone12,1", "iPhone16,1")
_EMULATOR_UAS = (
    "okhttp/4.9.3",
    "Dalvik/2.1.0 (Linux; U; Android 9; SM-G9750 Build/PQ3A.190605.003)",
    "Mozilla/5.0 (Linux; Android 7.1.2; MuMu Build/N2G48C; wv)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/118.0 Safari/537.36",
)

CATEGORIES: tuple[str, ...] = (
    "food",
    "ecommerce",
    "utilities",
    "mobile_topup",
    "travel",
    "virtual_goods",
    "game",
    "gift_card",
    "other",
    "transfer_service",
    "precious_metal",
    "loan",
)
# merchants per category (per 5,000 users; scaled) and Zipf exponent of their popularity
_MERCHANT_COUNTS = (600, 250, 30, 8, 60, 80, 60, 25, 300, 15, 10, 20)
CAT_WEIGHTS_ADULT = (30, 25, 3, 6, 4, 5, 3, 2, 10, 1, 0.5, 1)
CAT_WEIGHTS_STUDENT = (25, 20, 0, 15, 1, 10, 28, 1, 5, 0, 0, 0)
# per category: (median fen, log sigma) or fixed price points in yuan
AMOUNT_MODEL: dict[str, tuple[float, float] | tuple[int, ...]] = {
    "food": (3_500, 0.6),
    "ecommerce": (11_000, 1.0),
    "utilities": (15_000, 0.6),
    "mobile_topup": (30, 50, 50, 100, 100, 200),
    "travel": (70_000, 0.8),
    "virtual_goods": (2_500, 0.9),
    "game": (6, 30, 30, 68, 128, 198, 328, 648),
    "gift_card": (100, 200, 200, 500, 1000),
    "other": (8_000, 1.0),
    "transfer_service": (50_000, 0.9),
    "precious_metal": (300_000, 0.8),
    "loan": (150_000, 0.6),
}
MAX_LEGIT_FEN = 5_000_000

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


def luhn_complete(partial: str) -> str:
    """Append the Luhn check digit to `partial`."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = ord(ch) - 48
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return partial + str((10 - total % 10) % 10)


def make_pan(rng: random.Random, credit: bool) -> Body:
    """A Luhn-valid PAN on a real Chinese BIN, as the contract's `card` object."""
    bin_, bank, kind, length = rng.choice(_CREDIT_BINS if credit else _DEBIT_BINS)
    body = "".join(str(rng.randrange(10)) for _ in range(length - 7))
    return {"number": luhn_complete(bin_ + body), "bank": bank, "kind": kind}


_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def make_id_number(rng: random.Random, region: str, birth_year: int) -> str:
    """An 18-character resident ID: region, birth date, sequence and GB 11643 check.

    District codes in the national register date from the 1980s; people born earlier carry
    the prefecture-level code (e.g. 440100), which stdnum accepts for every year.
    """
    if birth_year < 1991:
        region = region[:4] + "00"
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    first17 = f"{region}{birth_year:04d}{month:02d}{day:02d}{rng.randrange(1000):03d}"
    total = sum(int(c) * w for c, w in zip(first17, _RIC_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def make_phone(rng: random.Random) -> str:
    return f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"


def make_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.randint(1, 2)))


def city_ip(rng: random.Random, city: str) -> str:
    return f"{rng.choice(CITIES[city][2])}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def attacker_ip(rng: random.Random) -> str:
    return f"{rng.choice(ATTACKER_IP_PREFIXES)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def pick_city(rng: random.Random, other_than: str | None = None) -> str:
    while True:
        city = rng.choices(CITY_NAMES, cum_weights=CITY_CUM)[0]
        if city != other_than:
            return city


@dataclass(slots=True, frozen=True)
class Device:
    id: str
    ua: str
    channel: str


def make_device(rng: random.Random, kind: str = "phone") -> Device:
    """A customer handset (app), a browser (web) or an attacker's emulator/script."""
    dev_id = f"d{rng.getrandbits(60):015x}"
    if kind == "emulator":
        return Device(dev_id, rng.choice(_EMULATOR_UAS), rng.choice(("app", "app", "wap")))
    if kind == "web":
        ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/119.0"
        return Device(dev_id, ua, "web")
    if rng.random() < 0.35:
        model = rng.choice(_IOS_MODELS)
        system = f"{model}; iOS 17.{rng.randint(0, 5)}"
    else:
        system = f"Android {rng.randint(10, 14)}; {rng.choice(_ANDROID_MODELS)}"
    return Device(
        dev_id, f"PayGuardApp/5.{rng.randint(0, 4)}.{rng.randint(0, 9)} ({system})", "app"
    )


@dataclass(slots=True)
class User:
    """One legitimate customer and the habits the legit generator follows."""

    uid: str
    phone: str
    id_number: str
    name: str
    city: str
    devices: list[Device]
    ips: list[str]
    cards: list[Body]
    reg_ts: int
    rate: float
    rhythm: int
    payday: int
    student: bool = False
    invests: int = 0
    borrows: bool = False
    autopay: bool = False
    balance_fen: int = 0
    payees: list[Body] = field(default_factory=list)
    switch_ts: int = 0
    new_device: Device | None = None
    travel: tuple[int, int, str, str] | None = None
    late_card: tuple[int, Body] | None = None


@dataclass(slots=True)
class Merchants:
    """The merchant catalog per category with Zipf popularity."""

    by_cat: dict[str, list[Body]]
    cum: dict[str, list[float]]
    api_ip: dict[str, str]

    def pick(self, rng: random.Random, cat: str) -> Body:
        return rng.choices(self.by_cat[cat], cum_weights=self.cum[cat])[0]


def make_merchants(rng: random.Random, users: int) -> Merchants:
    scale = max(0.2, users / 5000) ** 0.5
    by_cat: dict[str, list[Body]] = {}
    cum: dict[str, list[float]] = {}
    api_ip: dict[str, str] = {}
    for cat, count in zip(CATEGORIES, _MERCHANT_COUNTS, strict=True):
        n = max(3, int(count * scale))
        items = [{"id": f"m-{cat[:4]}-{i:05d}", "category": cat} for i in range(n)]
        by_cat[cat] = items
        cum[cat] = list(accumulate(1.0 / (i + 1) ** 1.1 for i in range(n)))
        for m in items:
            api_ip[m["id"]] = (
                f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            )
    return Merchants(by_cat, cum, api_ip)


def lognormal_fen(rng: random.Random, median: float, sigma: float) -> int:
    value = int(median * math.exp(rng.gauss(0.0, sigma)))
    if value >= 10_000 and rng.random() < 0.5:
        value -= value % 100  # people buy 199.00 more often than 198.37
    return max(100, min(value, MAX_LEGIT_FEN))


def amount_for(rng: random.Random, cat: str) -> int:
    model = AMOUNT_MODEL[cat]
    if len(model) == 2 and isinstance(model[1], float):
        return lognormal_fen(rng, model[0], model[1])
    return int(rng.choice(model)) * 100


_PAYDAYS = (1, 5, 10, 15, 20, 25)
RHYTHM_DAY, RHYTHM_NIGHT_OWL, RHYTHM_STUDENT, RHYTHM_NIGHT_SHIFT = 0, 1, 2, 3


def make_user(rng: random.Random, uid: str, reg_ts: int, activity: float) -> User:
    """A customer with a home city, 1-2 habitual devices and IPs, 1-4 cards and habits."""
    city = pick_city(rng)
    birth_year = rng.randint(1960, 2004)
    devices = [make_device(rng)]
    if rng.random() < 0.25:
        devices.append(make_device(rng, "web" if rng.random() < 0.5 else "phone"))
    ips = [city_ip(rng, city), city_ip(rng, city)]
    n_cards = rng.choices((1, 2, 3, 4), weights=(45, 30, 17, 8))[0]
    cards = [make_pan(rng, credit=rng.random() < 0.25) for _ in range(n_cards)]
    r = rng.random()
    rhythm = RHYTHM_STUDENT if r < 0.03 else RHYTHM_NIGHT_OWL if r < 0.09 else RHYTHM_DAY
    user = User(
        uid=uid,
        phone=make_phone(rng),
        id_number=make_id_number(rng, rng.choice(CITIES[city][1]), birth_year),
        name=make_name(rng),
        city=city,
        devices=devices,
        ips=ips,
        cards=cards,
        reg_ts=reg_ts,
        rate=min(6.0, 0.28 * activity * math.exp(rng.gauss(0.0, 0.8))),
        rhythm=rhythm,
        payday=rng.randrange(len(_PAYDAYS)),
        student=rhythm == RHYTHM_STUDENT,
        balance_fen=lognormal_fen(rng, 800_000, 0.9),
    )
    user.invests = 0 if rng.random() >= 0.05 else (2 if rng.random() < 0.3 else 1)
    user.borrows = rng.random() < 0.03
    user.autopay = rng.random() < 0.2
    if rng.random() < 0.4:
        user.payees = [
            {
                "id": f"p{rng.getrandbits(48):012x}",
                "card": make_pan(rng, False),
                "name": make_name(rng),
            }
            for _ in range(rng.randint(1, 3))
        ]
    return user


def share_devices(rng: random.Random, users: list[User], share: float) -> int:
    """Look-alike: families where 2-4 users log in from one handset on one home network."""
    groups = 0
    n = len(users)
    for _ in range(int(n * share / 3)):
        size = rng.randint(2, 4)
        members = [users[rng.randrange(n)] for _ in range(size)]
        head = members[0]
        for m in members[1:]:
            if m is head:
                continue
            m.devices[0] = head.devices[0]
            m.ips[0] = head.ips[0]
            m.city = head.city
        groups += 1
    return groups


def payday_of(user: User) -> int:
    return _PAYDAYS[user.payday]
