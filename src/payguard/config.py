"""Settings from an optional TOML file, overridden by `PAYGUARD_*` environment variables.

PAYGUARD_CONFIG       path of a TOML file with the keys below
PAYGUARD_DATA_DIR     embedded store directory (SQLite log + snapshots)
PAYGUARD_RULESET      ruleset YAML file
PAYGUARD_FEATURES     feature catalog YAML file
PAYGUARD_TOKEN_KEY    secret key for PII tokens (≥ 16 bytes; set it in production)
PAYGUARD_UTC_OFFSET   hours east of UTC for `hour`/`weekday` in rules (default 8)
PAYGUARD_LOG_LEVEL    logging level (default INFO)
PAYGUARD_MODEL        model artifact directory (`payguard model train`); none: rules only
PAYGUARD_GRAPH_CHAINS `0` runs without the identity graph and chain patterns (default 1)
PAYGUARD_OTP_TTL_S          seconds a one-time code stays valid (default 300)
PAYGUARD_OTP_MAX_ATTEMPTS   wrong codes before a challenge dies (default 5)
PAYGUARD_OTP_SAME_DEVICE    refuse a code from another device than the one that asked (default 1)
PAYGUARD_OTP_SAME_SESSION   refuse a code from another session (default 1)
PAYGUARD_OTP_SAME_IP        refuse a code from another IP (default 0: mobile IPs change)
PAYGUARD_OTP_OUTBOX         JSON Lines outbox for the default delivery (default
                            `<data_dir>/otp-outbox.jsonl`; in memory for in-memory engines)
"""

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec

from payguard.features import DEFAULT_CATALOG_PATH

DEV_TOKEN_KEY = "payguard-development-key-not-for-production"


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    data_dir: Path = Path("payguard-data")
    ruleset: Path = Path("rules/default.yaml")
    features: Path = DEFAULT_CATALOG_PATH
    token_key: str = DEV_TOKEN_KEY
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

    @property
    def uses_dev_key(self) -> bool:
        return self.token_key == DEV_TOKEN_KEY


_ENV_KEYS = {
    "PAYGUARD_DATA_DIR": "data_dir",
    "PAYGUARD_RULESET": "ruleset",
    "PAYGUARD_FEATURES": "features",
    "PAYGUARD_TOKEN_KEY": "token_key",
    "PAYGUARD_UTC_OFFSET": "utc_offset",
    "PAYGUARD_LOG_LEVEL": "log_level",
    "PAYGUARD_MODEL": "model",
    "PAYGUARD_GRAPH_CHAINS": "graph_chains",
    "PAYGUARD_OTP_TTL_S": "otp_ttl_s",
    "PAYGUARD_OTP_MAX_ATTEMPTS": "otp_max_attempts",
    "PAYGUARD_OTP_SAME_DEVICE": "otp_same_device",
    "PAYGUARD_OTP_SAME_SESSION": "otp_same_session",
    "PAYGUARD_OTP_SAME_IP": "otp_same_ip",
    "PAYGUARD_OTP_OUTBOX": "otp_outbox",
}


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
            values[field] = environ[env_key]
    try:
        return msgspec.convert(values, Settings, strict=False, dec_hook=_to_path)
    except msgspec.ValidationError as exc:
        raise ValueError(f"configuration: {exc}") from None
