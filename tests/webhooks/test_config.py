"""Webhook settings: endpoints and secrets from the environment (several secrets for
rotation), and a bad value refused at startup naming the setting (CLI exit code 2)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from payguard.config import load_settings

GOOD = "whsec-0123456789abcdef"


def test_lists_come_comma_separated_and_blank_means_off() -> None:
    settings = load_settings(
        env={
            "PAYGUARD_WEBHOOK_URLS": "http://127.0.0.1:9000/hooks, https://ops.bank.example/pg",
            "PAYGUARD_WEBHOOK_SECRETS": f"{GOOD}new,{GOOD}old",
            "PAYGUARD_WEBHOOK_MAX_ATTEMPTS": "3",
            "PAYGUARD_WEBHOOK_BACKOFF_MS": "250",
        }
    )
    assert settings.webhook_urls == (
        "http://127.0.0.1:9000/hooks",
        "https://ops.bank.example/pg",
    )
    assert settings.webhook_secrets == (f"{GOOD}new", f"{GOOD}old")
    assert (settings.webhook_max_attempts, settings.webhook_backoff_ms) == (3, 250)
    assert load_settings(env={"PAYGUARD_WEBHOOK_URLS": " "}).webhook_urls == ()


def test_a_toml_file_gives_lists_as_lists(tmp_path: Path) -> None:
    path = tmp_path / "payguard.toml"
    path.write_text(f'webhook_urls = ["http://localhost:8080/x"]\nwebhook_secrets = ["{GOOD}"]\n')
    assert load_settings(path, env={}).webhook_urls == ("http://localhost:8080/x",)


URLS, SECRETS = "PAYGUARD_WEBHOOK_URLS", "PAYGUARD_WEBHOOK_SECRETS"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({URLS: "ftp://files.example/x"}, r"PAYGUARD_WEBHOOK_URLS \(webhook_urls\[0\]\): 'ftp:"),
        ({URLS: "http://ok.example,/relative"}, r"webhook_urls\[1\]\): '/relative' is not an"),
        ({URLS: "http://host:port/x"}, r"webhook_urls\[0\]\): 'http://host:port/x'"),
        ({URLS: "http://a.example,,http://b.example"}, r"webhook_urls\[1\]\): ''"),
        ({URLS: "http://a.example"}, r"PAYGUARD_WEBHOOK_SECRETS \(webhook_secrets\): required"),
        ({SECRETS: f"{GOOD},"}, r"webhook_secrets\[1\]\): .* \(it is empty\)"),
        ({SECRETS: "short"}, r"webhook_secrets\[0\]\): a secret must have at least 16"),
        ({"PAYGUARD_WEBHOOK_MAX_ATTEMPTS": "0"}, r"webhook_max_attempts"),
        ({"PAYGUARD_WEBHOOK_TIMEOUT_MS": "soon"}, r"webhook_timeout_ms"),
    ],
)
def test_bad_settings_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_settings(env=env)


def test_serve_refuses_to_start_with_a_bad_endpoint(tmp_path: Path) -> None:
    env = dict(os.environ, PAYGUARD_DATA_DIR=str(tmp_path / "data"))
    env |= {"PAYGUARD_WEBHOOK_URLS": "htp://typo.example", "PAYGUARD_WEBHOOK_SECRETS": GOOD}
    result = subprocess.run(
        [sys.executable, "-m", "payguard.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert b"PAYGUARD_WEBHOOK_URLS (webhook_urls[0])" in result.stderr
    assert b"Traceback" not in result.stderr
    assert not (tmp_path / "data").exists(), "nothing is opened before the settings are good"
