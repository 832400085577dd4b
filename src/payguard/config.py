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
"""

import os
import tomllib
from pathlib import Path
from typing import Any

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
