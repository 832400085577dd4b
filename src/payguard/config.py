"""Settings from an optional TOML file, overridden by `PAYGUARD_*` environment variables.

PAYGUARD_CONFIG       path of a TOML file with the keys below
PAYGUARD_DATA_DIR     embedded store directory (SQLite log + snapshots)
PAYGUARD_RULESET      ruleset YAML file
PAYGUARD_FEATURES     feature catalog YAML file
PAYGUARD_TOKEN_KEY    secret key for PII tokens (≥ 32 bytes; `serve` refuses less outside
                      development mode)
PAYGUARD_TOKEN_KEY_VERSION   the version PAYGUARD_TOKEN_KEY is (default 1; docs/security.md)
PAYGUARD_TOKEN_KEY_PREVIOUS  during a rotation, the previous version of the key
PAYGUARD_UTC_OFFSET   hours east of UTC for `hour`/`weekday` in rules (default 8)
PAYGUARD_LOG_LEVEL    logging level (default INFO)
PAYGUARD_MODEL        model artifact directory (`payguard model train`); none: rules only
PAYGUARD_GRAPH_CHAINS `0` runs without the identity graph and chain patterns (default 1)
PAYGUARD_MAX_FUTURE_MS      how far an event's `ts` may lie ahead of the wall clock (default
                            300000: 5 minutes); later events are refused (docs/security.md)
PAYGUARD_SYNCHRONOUS        SQLite `synchronous` of the event log: FULL (default) or NORMAL
PAYGUARD_LOG_DSN            the event log and decisions in Postgres (`postgresql://…`), as
                            workers that scale out keep them (docs/scale.md); none: SQLite
PAYGUARD_PUBLISH_URL        the board rulesets and list changes are published to every
                            worker through (`postgresql://…`, `redis://…`,
                            `redis+cluster://…`; default: PAYGUARD_LOG_DSN; none: one process)
PAYGUARD_OTP_TTL_S          seconds a one-time code stays valid (default 300)
PAYGUARD_OTP_MAX_ATTEMPTS   wrong codes before a challenge dies (default 5)
PAYGUARD_OTP_SAME_DEVICE    refuse a code from another device than the one that asked (default 1)
PAYGUARD_OTP_SAME_SESSION   refuse a code from another session (default 1)
PAYGUARD_OTP_SAME_IP        refuse a code from another IP (default 0: mobile IPs change)
PAYGUARD_OTP_OUTBOX         JSON Lines outbox for the default delivery (default
                            `<data_dir>/otp-outbox.jsonl`; in memory for in-memory engines)
PAYGUARD_WEBHOOK_URLS       comma-separated http(s) endpoints told of decisions that need
                            someone and of outcome changes (docs/webhooks.md); none: off
PAYGUARD_WEBHOOK_SECRETS    comma-separated signing secrets (≥ 16 characters each), all
                            active: one `v1=` signature per secret, for rotation
PAYGUARD_WEBHOOK_TIMEOUT_MS     one delivery attempt's time limit (default 5000)
PAYGUARD_WEBHOOK_BACKOFF_MS     delay before the first retry, doubled after each (default 10000)
PAYGUARD_WEBHOOK_MAX_ATTEMPTS   attempts before a delivery is marked failed (default 20)
PAYGUARD_WEBHOOK_MAX_AGE_S      age after which a delivery is no longer retried (default 86400)
PAYGUARD_RATE_LIMIT_PER_S   requests a second per API key, unless the key sets its own
                            (default 2000; docs/security.md)
PAYGUARD_RATE_LIMIT_BURST   requests a key may send at once before the rate applies (4000)
PAYGUARD_REQUEST_TIMEOUT_S  seconds a client has to send a whole request, headers and body
                            (default 10)
PAYGUARD_KEEP_ALIVE_S       seconds an idle keep-alive connection stays open (default 5)
PAYGUARD_MAX_CONCURRENCY    connections + requests in flight before 503 (default 1000)
PAYGUARD_MAX_HEADER_BYTES   request line and headers, at most (default 16384)
PAYGUARD_HTTP               HTTP parser: httptools (default, C) or h11 (pure Python)
PAYGUARD_DEV                `1`: development mode (docs/security.md): the development token
                            key and a development admin key are allowed; not a setting
"""

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable

    from payguard.events import Tokenizer

from payguard.features import DEFAULT_CATALOG_PATH
from payguard.features.spec import parse_duration

DEV_TOKEN_KEY = "payguard-development-key-not-for-production"

IDLE_AFTER = "6h"
"""`encode_idle_after` of a server under `auto` (docs/benchmarks.md, idle records)."""


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    data_dir: Path = Path("payguard-data")
    ruleset: Path = Path("rules/default.yaml")
    features: Path = DEFAULT_CATALOG_PATH
    token_key: str = DEV_TOKEN_KEY
    token_key_version: Annotated[int, msgspec.Meta(ge=1, le=999)] = 1
    """The version `token_key` is; tokens of version 2 on carry `v<n>_` (docs/security.md)."""
    token_key_previous: str | None = None
    """During a rotation, version `token_key_version - 1` of the key: entities already
    known under it keep their tokens (events.tokenize.Tokenizer)."""
    utc_offset: int = 8
    log_level: str = "INFO"
    model: Path | None = None
    """A model artifact directory; without one (or one that cannot serve) rules only."""
    flush_every: int = 1_000
    """Records per commit during batch replay (the HTTP server commits every request)."""
    snapshot_every: int = 100_000
    """Events between state snapshots; a restart replays at most this many."""
    graph_chains: bool = True
    """Maintain the identity graph and match the ruleset's chain patterns. Off, rules and
    chains cannot read graph or chain features (a ruleset that does is refused): for
    measuring what they cost, and for deployments that do not want them."""
    max_future_ms: Annotated[int, msgspec.Meta(ge=0)] = 5 * 60_000
    """How far an event's `ts` may lie ahead of the wall clock before it is refused (HTTP
    422 naming `ts`, CLI exit 2): a client clock a day fast would otherwise move the
    watermark and empty every shorter window (docs/security.md, "Time and lateness")."""
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    """SQLite `synchronous` for the event log: FULL syncs the WAL before a request is
    answered; NORMAL may lose the last commits on power loss (docs/security.md,
    "Durability")."""
    log_dsn: str | None = None
    """Postgres connection string of the event log shared by scaled-out workers
    (payguard.store.postgres); None: SQLite in `data_dir`."""
    publish_url: str | None = None
    """Where workers publish rulesets and list changes to each other (payguard.board);
    None: `log_dsn` if set, else nowhere (one process)."""
    rule_budget_us: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] = 50_000
    """Time one event's rules may spend in the CEL binding; the rules left when it runs
    out fail by their `on_error` (docs/security.md, "Rules sandbox")."""
    max_body_bytes: int = 65_536
    max_batch_bytes: int = 8 * 1024 * 1024
    otp_ttl_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 300
    """How long a one-time code stays valid (docs/otp.md)."""
    otp_max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    """Wrong codes a challenge survives; the last one kills it (and is recorded)."""
    otp_same_device: bool = True
    """Refuse (and record) a code presented from another device than the one that asked:
    the fake-customer-service pattern, where the victim reads the code to a caller."""
    otp_same_session: bool = True
    otp_same_ip: bool = False
    """Off by default: a phone's IP changes between mobile networks and Wi-Fi."""
    otp_outbox: Path | None = None
    """The default delivery's JSON Lines outbox; None: `otp-outbox.jsonl` in `data_dir`
    (in memory for in-memory engines). It holds message texts, codes included: it stands
    in for the SMS gateway, so production plugs a real `Delivery` instead."""
    webhook_urls: tuple[str, ...] = ()
    """Endpoints each webhook is delivered to (each one its own delivery); none: off."""
    webhook_secrets: tuple[str, ...] = ()
    """Active signing secrets, newest first: every delivery carries one signature per
    secret, so a receiver can move to a new secret before the old one is dropped."""
    webhook_timeout_ms: Annotated[int, msgspec.Meta(ge=100, le=60_000)] = 5_000
    webhook_backoff_ms: Annotated[int, msgspec.Meta(ge=1, le=3_600_000)] = 10_000
    webhook_max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    webhook_max_age_s: Annotated[int, msgspec.Meta(ge=1, le=30 * 86_400)] = 86_400
    # -- access and connection limits (docs/security.md, "Rate limits and timeouts") --
    rate_limit_per_s: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 2_000
    rate_limit_burst: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 4_000
    request_timeout_s: Annotated[int, msgspec.Meta(ge=1, le=3_600)] = 10
    """From a request's first byte (or the connection's opening) to its last body byte."""
    keep_alive_s: Annotated[int, msgspec.Meta(ge=1, le=3_600)] = 5
    max_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1_000
    max_header_bytes: Annotated[int, msgspec.Meta(ge=1_024, le=1_048_576)] = 16_384
    encode_idle_after: str = "off"
    """Event time after which the feature sweep encodes again a record nothing used
    (a duration such as `6h`; features.cold, "Idle records"): about a fifth of its memory,
    decoded again when its entity returns. `off` (the default): never; `auto`: `IDLE_AFTER`
    in `serve`, off in `replay`, `warm-up`, backtests and tools (`idle_ms`). Off by default:
    measured, it halves a server's memory per account but the first sweep round after a
    restart then costs twice the CPU, and 1,000 req/s on a 20k x 90-day state saturated
    where it is off they were held (docs/benchmarks.md, open loop)."""
    http: Literal["httptools", "h11"] = "httptools"
    """The HTTP/1.1 parser: httptools (llhttp, in C) or h11 (pure Python, the fallback);
    both keep every limit above (payguard.api.timeouts)."""

    def __post_init__(self) -> None:
        _check_webhooks(self.webhook_urls, self.webhook_secrets)
        _check_previous_token_key(self.token_key_version, self.token_key_previous)
        self.idle_ms(serving=True)  # a bad duration is refused at load, by name

    def idle_ms(self, *, serving: bool) -> int:
        """`encode_idle_after` in ms for `FeatureState.idle_ms` (0: off); `auto` is
        `IDLE_AFTER` for a server and off otherwise."""
        after = self.encode_idle_after
        if after == "auto":
            after = IDLE_AFTER if serving else "off"
        if after == "off":
            return 0
        try:
            return parse_duration(after)
        except ValueError as exc:
            raise ValueError(f"PAYGUARD_ENCODE_IDLE_AFTER (encode_idle_after): {exc}") from None

    def tokenizer(self, known: "Callable[[str], bool] | None" = None) -> "Tokenizer":
        """The tokenizer for this key version; `known` (is a token in the state?) lets a
        rotation keep the tokens of entities seen under `token_key_previous`."""
        from payguard.events import Tokenizer

        previous = self.token_key_previous
        return Tokenizer(
            self.token_key.encode(),
            version=self.token_key_version,
            previous=previous.encode() if previous is not None else None,
            known=known,
        )

    @property
    def uses_dev_key(self) -> bool:
        return self.token_key == DEV_TOKEN_KEY


_ENV_KEYS = {
    "PAYGUARD_DATA_DIR": "data_dir",
    "PAYGUARD_RULESET": "ruleset",
    "PAYGUARD_FEATURES": "features",
    "PAYGUARD_TOKEN_KEY": "token_key",
    "PAYGUARD_TOKEN_KEY_VERSION": "token_key_version",
    "PAYGUARD_TOKEN_KEY_PREVIOUS": "token_key_previous",
    "PAYGUARD_UTC_OFFSET": "utc_offset",
    "PAYGUARD_LOG_LEVEL": "log_level",
    "PAYGUARD_MODEL": "model",
    "PAYGUARD_GRAPH_CHAINS": "graph_chains",
    "PAYGUARD_MAX_FUTURE_MS": "max_future_ms",
    "PAYGUARD_SYNCHRONOUS": "synchronous",
    "PAYGUARD_LOG_DSN": "log_dsn",
    "PAYGUARD_PUBLISH_URL": "publish_url",
    "PAYGUARD_OTP_TTL_S": "otp_ttl_s",
    "PAYGUARD_OTP_MAX_ATTEMPTS": "otp_max_attempts",
    "PAYGUARD_OTP_SAME_DEVICE": "otp_same_device",
    "PAYGUARD_OTP_SAME_SESSION": "otp_same_session",
    "PAYGUARD_OTP_SAME_IP": "otp_same_ip",
    "PAYGUARD_OTP_OUTBOX": "otp_outbox",
    "PAYGUARD_WEBHOOK_URLS": "webhook_urls",
    "PAYGUARD_WEBHOOK_SECRETS": "webhook_secrets",
    "PAYGUARD_WEBHOOK_TIMEOUT_MS": "webhook_timeout_ms",
    "PAYGUARD_WEBHOOK_BACKOFF_MS": "webhook_backoff_ms",
    "PAYGUARD_WEBHOOK_MAX_ATTEMPTS": "webhook_max_attempts",
    "PAYGUARD_WEBHOOK_MAX_AGE_S": "webhook_max_age_s",
    "PAYGUARD_RATE_LIMIT_PER_S": "rate_limit_per_s",
    "PAYGUARD_RATE_LIMIT_BURST": "rate_limit_burst",
    "PAYGUARD_REQUEST_TIMEOUT_S": "request_timeout_s",
    "PAYGUARD_KEEP_ALIVE_S": "keep_alive_s",
    "PAYGUARD_MAX_CONCURRENCY": "max_concurrency",
    "PAYGUARD_MAX_HEADER_BYTES": "max_header_bytes",
    "PAYGUARD_HTTP": "http",
    "PAYGUARD_ENCODE_IDLE_AFTER": "encode_idle_after",
}
_LIST_KEYS = frozenset({"webhook_urls", "webhook_secrets"})
"""Settings that an environment variable gives as a comma-separated list."""
MIN_WEBHOOK_SECRET = 16


def _check_previous_token_key(version: int, previous: str | None) -> None:
    """A previous key is version `version - 1`, so it needs a current version of 2 or more,
    and it must be as long as any token key (docs/security.md, "Token keys and rotation")."""
    if previous is None:
        return
    if version < 2:
        raise ValueError(
            "PAYGUARD_TOKEN_KEY_PREVIOUS needs PAYGUARD_TOKEN_KEY_VERSION of 2 or more"
        )
    if len(previous.encode()) < 16:
        raise ValueError("PAYGUARD_TOKEN_KEY_PREVIOUS: shorter than 16 bytes")


def _check_webhooks(urls: Iterable[str], secrets: Iterable[str]) -> None:
    """Refuse (naming the setting) a URL that is not absolute http(s), an empty or short
    secret, and endpoints without a secret: an unsigned webhook could be forged."""
    urls, secrets = list(urls), list(secrets)
    for index, url in enumerate(urls):
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"PAYGUARD_WEBHOOK_URLS (webhook_urls[{index}]): {url!r} is not an "
                "absolute http:// or https:// URL with a host"
            )
    for index, secret in enumerate(secrets):
        if len(secret.strip()) < MIN_WEBHOOK_SECRET:
            raise ValueError(
                f"PAYGUARD_WEBHOOK_SECRETS (webhook_secrets[{index}]): a secret must have "
                f"at least {MIN_WEBHOOK_SECRET} characters"
                + (" (it is empty)" if not secret.strip() else "")
            )
    if urls and not secrets:
        raise ValueError(
            "PAYGUARD_WEBHOOK_SECRETS (webhook_secrets): required when webhook_urls is set "
            "(deliveries are always signed)"
        )


def _split_list(raw: str) -> list[str]:
    """`a, b` → ["a", "b"]; a blank value is an empty list (an empty item stays, to be
    refused by name)."""
    return [item.strip() for item in raw.split(",")] if raw.strip() else []


def _to_path(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot read {kind!r} from configuration")


def load_settings(path: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """File first, then environment; raises ValueError naming the bad key."""
    environ = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    config_path = path or (
        Path(environ["PAYGUARD_CONFIG"]) if "PAYGUARD_CONFIG" in environ else None
    )
    if config_path is not None:
        with config_path.open("rb") as fh:
            values.update(tomllib.load(fh))
    for env_key, field in _ENV_KEYS.items():
        if env_key in environ:
            raw = environ[env_key]
            values[field] = _split_list(raw) if field in _LIST_KEYS else raw
    try:
        return msgspec.convert(values, Settings, strict=False, dec_hook=_to_path)
    except msgspec.ValidationError as exc:
        raise ValueError(f"configuration: {exc}") from None
