"""`?explain=1` over real HTTP: money in the features is integer fen and `units` says so;
"never" is null, not the rules' 1000000000 sentinel (nor a float 1e9) — on POST, on a
batch and on GET /v1/decisions/{event_id}, which must show the same explanation."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiserver import Server

from payguard.explanation import is_never
from payguard.features import NEVER

USER = "u_expl"


def _payment(i: int, minute: int) -> dict[str, Any]:
    return {
        "event_id": f"expl-{i}",
        "type": "payment",
        "ts": f"2020-09-04T12:{minute:02d}:00+08:00",
        "user_id": USER,
        "device_id": "dfp_expl",
        "amount": "25.00",
        "card": {"token": "vault_expl"},
        "merchant": {"id": "m_expl", "category": "food"},
        "channel": "app",
    }


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server = Server(Path(tmp_path_factory.mktemp("explain"))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for i in range(3):
                assert http.post("/v1/events", json=_payment(i, 10 + i)).status_code == 200
            yield http
    finally:
        server.stop()


def _check(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert "1e9" not in text and "1e+09" not in text and str(NEVER) not in text.split('"units"')[0]
    body: dict[str, Any] = answer.json()
    features = body["features"]
    assert body["units"]["money"] == "fen"
    # three payments of 25.00 before this one: 7500 fen, an int
    assert features["sum_amount_money_out_by_user_24h"] == 7500
    assert type(features["sum_amount_money_out_by_user_24h"]) is int
    assert features["minutes_since_phone_risk_by_user_72h"] is None
    assert features["seconds_since_otp_send_by_user_10m"] is None
    assert all(v is not None for k, v in features.items() if not k.startswith("minutes_since")
               and not k.startswith("seconds_since") and not k.endswith("_started_minutes_ago")
               and k != "graph_reported_distance")  # fmt: skip
    return body


def test_post_explains_in_fen_with_never_as_null(client: httpx.Client) -> None:
    _check(client.post("/v1/events", json=_payment(3, 20), params={"explain": "1"}))


def test_get_shows_the_same_explanation(client: httpx.Client) -> None:
    posted = _check(client.post("/v1/events", json=_payment(3, 20), params={"explain": "1"}))
    got = _check(client.get("/v1/decisions/expl-3", params={"explain": "1"}))
    assert got["features"] == posted["features"] and got["units"] == posted["units"]


def test_batch_explains_the_same_way(client: httpx.Client) -> None:
    answer = client.post("/v1/events/batch", json=[_payment(3, 20)], params={"explain": "1"})
    assert answer.status_code == 200, answer.text
    [decision] = answer.json()["decisions"]
    assert decision["units"]["money"] == "fen"
    assert decision["features"]["minutes_since_phone_risk_by_user_72h"] is None


def test_without_explain_there_are_no_units(client: httpx.Client) -> None:
    body = client.post("/v1/events", json=_payment(3, 20)).json()
    assert "units" not in body and "features" not in body
    assert "units" not in client.get("/v1/decisions/expl-3").json()


def test_a_real_value_is_never_taken_for_never() -> None:
    assert is_never("minutes_since_sim_swap_by_user_72h", NEVER)
    assert is_never("chain_phone_takeover_started_minutes_ago", NEVER)
    assert not is_never("minutes_since_sim_swap_by_user_72h", 4320)
    assert not is_never("sum_amount_money_out_by_user_24h", NEVER)  # 10,000,000.00 yuan
    assert not is_never("minutes_since_sim_swap_by_user_72h", True)
