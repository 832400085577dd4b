"""No card, ID or phone number in clear in a webhook: the example events (real-format
numbers in clear) are decided with webhooks on, every delivery is sent to a real
receiver, and the outbox file and everything received are searched for each number, in
the style of tests/engine/test_no_clear_pii.py."""

import sys
from pathlib import Path

import msgspec
from receiver import SECRET, Receiver

from payguard.config import load_settings
from payguard.engine import Engine
from payguard.webhooks import OUTBOX_FILE, Webhooks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from test_no_clear_pii import EVENTS, ROOT, _clear_values


def test_no_clear_pii_in_the_outbox_or_any_delivery(tmp_path: Path) -> None:
    lines = EVENTS.read_bytes().splitlines()
    clear = _clear_values([msgspec.json.decode(line) for line in lines])
    assert len(clear) > 500
    receiver = Receiver([SECRET]).start()
    loaded = load_settings(env={"PAYGUARD_DATA_DIR": str(tmp_path)})
    settings = msgspec.structs.replace(
        loaded,
        ruleset=ROOT / "rules" / "default.yaml",
        webhook_urls=(receiver.url,),
        webhook_secrets=(SECRET,),
    )
    engine = Engine.open(settings)
    webhooks = Webhooks.open(settings)
    assert webhooks is not None
    webhooks.attach(engine)
    try:
        for line in lines:
            engine.process(engine.decoder.decode(line))
        engine.flush()
        while webhooks.dispatcher.deliver_due():
            pass
    finally:
        webhooks.close()
        engine.close()
        receiver.stop()

    types = {r.json["type"] for r in receiver.requests}
    assert {"decision.review", "decision.hold"} <= types
    assert len(receiver.accepted) > 100 and all(r.status == 200 for r in receiver.requests)
    blobs = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(OUTBOX_FILE)}
    blobs["received"] = b"\n".join(r.body + repr(r.headers).encode() for r in receiver.requests)
    for name, blob in blobs.items():
        leaks = sorted(v for v in clear if v.encode() in blob)
        assert not leaks, f"{name} holds clear PII: {leaks[:3]}"
