"""`payguard webhooks list` / `retry` on the outbox file, and bad input (exit 2, one line
naming what is wrong)."""

import json
from pathlib import Path

import pytest
from receiver import T0
from typer.testing import CliRunner

from payguard.cli.main import app
from payguard.webhooks import OUTBOX_FILE, Attempt, Outbox, WebhookNotifier

URL = "http://127.0.0.1:9/hooks"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An outbox with one delivered and one failed delivery."""
    outbox = Outbox(tmp_path / OUTBOX_FILE)
    notifier = WebhookNotifier(outbox, [URL], clock=lambda: T0)
    notifier.outcome_changed("ev-ok", "decided", "hold:released", {})
    notifier.outcome_changed("ev-bad", "decided", "hold:revoked", {})
    notifier.flush()
    for delivery, _ in outbox.due(T0, 10):
        ok = delivery.subject == "ev-ok"
        attempt = Attempt(1, T0, 3, status=200 if ok else 503)
        outbox.record(delivery, attempt, "delivered" if ok else "failed", T0)
    outbox.close()
    return {"PAYGUARD_DATA_DIR": str(tmp_path)}


def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["webhooks", *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_list_filters_and_retry_makes_a_failed_delivery_pending(env: dict[str, str]) -> None:
    code, out, _ = _run(env, "list")
    assert code == 0 and len(out.splitlines()) == 2
    code, out, _ = _run(env, "list", "--status", "failed")
    [failed] = [json.loads(line) for line in out.splitlines()]
    assert (failed["subject"], failed["last_status"]) == ("ev-bad", 503)
    code, out, _ = _run(env, "retry", failed["delivery_id"])
    assert code == 0 and json.loads(out)["state"] == "pending"
    code, out, _ = _run(env, "list", "--event-id", "ev-bad")
    assert [json.loads(line)["state"] for line in out.splitlines()] == ["pending"]


def test_bad_input_exits_2_naming_it(env: dict[str, str], tmp_path: Path) -> None:
    code, _, err = _run(env, "list", "--status", "lost")
    assert code == 2 and "--status: expected one of pending, delivered, failed" in err
    code, _, err = _run(env, "retry", "whd_nope")
    assert code == 2 and "delivery 'whd_nope': no such delivery" in err
    _, out, _ = _run(env, "list", "--status", "delivered")
    delivered = json.loads(out)["delivery_id"]
    code, _, err = _run(env, "retry", delivered)
    assert code == 2 and "is delivered, not failed" in err
    empty = {"PAYGUARD_DATA_DIR": str(tmp_path / "elsewhere")}
    code, _, err = _run(empty, "list")
    assert code == 2 and "no webhook outbox" in err
