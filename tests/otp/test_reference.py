"""A send that names the decided event it authorises (`ref_event_id`): the binding comes
from that event, and the code is refused unless its decision offered `sms_otp`."""

from typing import Any

import pytest
from otp_support import T0, decide, last_code, recorded, send, verify

from payguard.engine import Engine
from payguard.otp import MemoryOutbox, OtpError, OtpService

PAY: dict[str, Any] = {
    "device_id": "dev_1",
    "amount": "1500.00",
    "merchant": {"id": "m_shop", "category": "ecommerce"},
    "channel": "app",
}


def _payment(engine: Engine, event_id: str, **changes: Any) -> None:
    decide(engine, event_id, "payment", "u_1", T0 - 60_000, **{**PAY, **changes})


def _refused(otp: OtpService, **request: Any) -> OtpError:
    assert isinstance(otp.delivery, MemoryOutbox)
    before = len(otp.delivery.sent)
    with pytest.raises(OtpError) as refused:
        send(otp, **request)
    assert len(otp.delivery.sent) == before
    return refused.value


def test_decision_offering_sms_binds_to_the_event(otp: OtpService, engine: Engine) -> None:
    _payment(engine, "pay-sms")
    stored = engine.stored_decision("pay-sms")
    assert stored is not None and stored.action == "challenge"
    assert isinstance(stored.challenge, list) and "sms_otp" in stored.challenge
    sent = send(otp, ref_event_id="pay-sms", amount=None, merchant=None)
    assert (sent.amount, sent.currency, sent.purpose) == ("1500.00", "CNY", "payment")
    assert recorded(engine, sent.event_id).ref_event_id == "pay-sms"
    code = last_code(otp)
    presented = {"amount": "1500.00", "merchant": {"id": "m_shop"}}
    assert verify(
        otp, sent.challenge_id, code, amount="1.00", merchant={"id": "m_shop"}
    ).result == ("binding_changed")
    sent = send(otp, ref_event_id="pay-sms", **presented)  # stated and equal: fine
    assert verify(otp, sent.challenge_id, last_code(otp), **presented).verified


def test_decision_without_sms_refuses_the_code(otp: OtpService, engine: Engine) -> None:
    _payment(engine, "pay-gift", merchant={"id": "m_gift", "category": "gift_card"})
    stored = engine.stored_decision("pay-gift")
    assert stored is not None and stored.action in ("challenge", "review")
    assert not (isinstance(stored.challenge, list) and "sms_otp" in stored.challenge)
    error = _refused(otp, ref_event_id="pay-gift", amount=None, merchant=None)
    assert (error.status, error.error, error.field) == (409, "otp_refused", "ref_event_id")
    assert "sms_otp" in error.reason and "no_sms_gift_cards" in error.reason
    assert error.event_id == "pay-gift"


@pytest.mark.parametrize(
    ("changes", "action"),
    [({"amount": "20.00"}, "allow"), ({"amount": "20000.00"}, "review")],
)
def test_allow_and_review_do_not_ask_for_sms(
    otp: OtpService, engine: Engine, changes: dict[str, Any], action: str
) -> None:
    _payment(engine, f"pay-{action}", **changes)
    stored = engine.stored_decision(f"pay-{action}")
    assert stored is not None and stored.action == action
    error = _refused(otp, ref_event_id=f"pay-{action}", amount=None, merchant=None)
    assert (error.status, error.field) == (409, "ref_event_id")
    assert f"`{action}`" in error.reason


@pytest.mark.parametrize(
    ("request_changes", "field"),
    [
        ({"amount": "1499.99"}, "amount"),
        ({"currency": "USD", "amount": None}, "currency"),
        ({"merchant": {"id": "m_other"}, "amount": None}, "merchant"),
        ({"merchant": None, "payee": {"id": "m_shop"}, "amount": None}, "payee"),
        ({"purpose": "transfer", "amount": None, "merchant": None}, "purpose"),
        ({"user_id": "u_2", "amount": None, "merchant": None}, "user_id"),
    ],
)
def test_binding_must_equal_the_referenced_event(
    otp: OtpService, engine: Engine, request_changes: dict[str, Any], field: str
) -> None:
    _payment(engine, "pay-bind")
    error = _refused(otp, ref_event_id="pay-bind", **request_changes)
    assert (error.status, error.field) == (409, field)


def test_unknown_reference_is_404(otp: OtpService) -> None:
    error = _refused(otp, ref_event_id="no-such-event", amount=None, merchant=None)
    assert (error.status, error.error, error.field) == (404, "not_found", "ref_event_id")


def test_reference_must_be_money_out(otp: OtpService, engine: Engine) -> None:
    decide(engine, "login-1", "login", "u_1", T0 - 60_000, device_id="dev_1", success=True)
    error = _refused(otp, ref_event_id="login-1", amount=None, merchant=None)
    assert (error.status, error.field) == (409, "ref_event_id")


def test_transfer_reference_binds_the_payee(otp: OtpService, engine: Engine) -> None:
    decide(
        engine,
        "xfer-1",
        "transfer",
        "u_1",
        T0 - 60_000,
        device_id="dev_1",
        amount="2000.00",
        payee={"id": "acct_9", "name": "李四", "card": {"number": "6222021234567890128"}},
    )
    sent = send(otp, ref_event_id="xfer-1", amount=None, merchant=None)
    assert sent.purpose == "transfer"
    assert isinstance(otp.delivery, MemoryOutbox)
    assert "李四（尾号0128）" in otp.delivery.sent[-1].text
    code = last_code(otp)
    payee = {"id": "acct_9", "card": {"number": "6222021234567890128"}}
    assert verify(
        otp, sent.challenge_id, code, amount="2000.00", merchant=None, payee=payee
    ).verified
