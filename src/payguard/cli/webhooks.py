"""`payguard webhooks list` and `payguard webhooks retry`: the outbox from the shell.

payguard webhooks list [--status failed] [--event-id E] [--limit 100]
payguard webhooks retry DELIVERY_ID

Both read `webhooks.db` in the data directory directly, so they work while the server is
stopped as well as while it runs (SQLite WAL; a running server's dispatcher picks a
retried delivery up within seconds). `list` prints one JSON delivery per line, newest
first; `retry` prints the delivery, now pending. Bad input exits 2 with one line naming
it: an unknown status or delivery id, a delivery that is not failed, no outbox.
"""

from pathlib import Path
from typing import Annotated

import msgspec
import typer

from payguard.cli.common import fail
from payguard.config import load_settings
from payguard.webhooks import DELIVERY_STATES, OUTBOX_FILE, DeliveryState, Outbox, OutboxError
from payguard.webhooks.dispatcher import wall_clock_ms

webhooks_app = typer.Typer(help="List and retry webhook deliveries.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (else PAYGUARD_CONFIG).")
]


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks_app, name="webhooks")


def _outbox(config: Path | None) -> Outbox:
    try:
        settings = load_settings(config)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    path = settings.data_dir / OUTBOX_FILE
    if not path.exists():
        fail(f"no webhook outbox at {path} (PAYGUARD_DATA_DIR; webhooks never configured?)")
    return Outbox(path)


def _state(value: str | None) -> DeliveryState | None:
    if value is None:
        return None
    for state in DELIVERY_STATES:
        if value == state:
            return state
    fail(f"--status: expected one of {', '.join(DELIVERY_STATES)}, got {value!r}")


@webhooks_app.command("list")
def list_deliveries(
    status: Annotated[
        str | None, typer.Option("--status", help="pending, delivered or failed.")
    ] = None,
    event_id: Annotated[
        str | None, typer.Option("--event-id", help="Deliveries about one decision.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000)] = 100,
    config: ConfigOption = None,
) -> None:
    """Print deliveries as JSON Lines, newest first."""
    state = _state(status)
    outbox = _outbox(config)
    try:
        for delivery in outbox.find(state=state, subject=event_id, limit=limit):
            typer.echo(msgspec.json.encode(delivery).decode())
    finally:
        outbox.close()


@webhooks_app.command("retry")
def retry_delivery(
    delivery_id: Annotated[str, typer.Argument(help="The failed delivery's id (whd_…).")],
    config: ConfigOption = None,
) -> None:
    """Make a failed delivery pending and due now, with a fresh round of attempts."""
    outbox = _outbox(config)
    try:
        delivery = outbox.retry(delivery_id, wall_clock_ms())
    except OutboxError as exc:
        fail(str(exc))
    finally:
        outbox.close()
    typer.echo(msgspec.json.encode(delivery).decode())
