"""`payguard keys …` and `payguard audit …`: API keys and the audit log from the shell.

payguard keys create --scope S [--scope S…] [--name N] [--expires-days D]
payguard keys list
payguard keys revoke KEY_ID
payguard audit export [--format jsonl|csv] [--action A] [--actor A] [-o FILE]
payguard audit verify

All work on `auth.db` in the data directory, with or without a running server (SQLite
WAL; the server sees a new or revoked key on its next request). `keys create` prints the
key's details on stderr and the secret alone on the last line of stdout — the only time
it is shown. Key changes are audited as `cli:<login>`. Bad input exits 2 with one line.
"""

import getpass
import sys
import time
from pathlib import Path
from typing import Annotated, TextIO

import msgspec
import typer

from payguard.auth import (
    AUTH_DB,
    SCOPES,
    Access,
    ExportFormat,
    KeyChangeError,
    export_lines,
    parse_scope,
)
from payguard.cli.common import err, fail, settings_or_exit

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
audit_app = typer.Typer(help="Export and verify the audit log.", no_args_is_help=True)
DAY_MS = 86_400_000

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (else PAYGUARD_CONFIG).")
]


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")


def _access(config: Path | None, *, must_exist: bool = False) -> Access:
    settings = settings_or_exit(config)
    if must_exist and not (settings.data_dir / AUTH_DB).exists():
        fail(f"no key store at {settings.data_dir / AUTH_DB} (PAYGUARD_DATA_DIR)")
    try:
        return Access.open(
            settings.data_dir,
            rate_per_s=settings.rate_limit_per_s,
            burst=settings.rate_limit_burst,
        )
    except OSError as exc:
        fail(f"cannot open {settings.data_dir / AUTH_DB}: {exc}")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli:unknown"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@keys_app.command("create")
def create(
    scope: Annotated[list[str], typer.Option("--scope", help=f"Repeatable: {', '.join(SCOPES)}.")],
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")] = "unnamed",
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, max=3650, help="Valid this long.")
    ] = None,
    rate: Annotated[
        int | None, typer.Option("--rate", min=1, help="Requests a second (else the default).")
    ] = None,
    burst: Annotated[
        int | None, typer.Option("--burst", min=1, help="Burst size (else the default).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a key; its secret is printed once, alone on the last line of stdout."""
    try:
        scopes = [parse_scope(text) for text in scope]
    except ValueError as exc:
        fail(f"--scope: {exc}")
    now = _now_ms()
    expires = None if expires_days is None else now + expires_days * DAY_MS
    access = _access(config)
    try:
        new = access.create_key(
            scopes,
            name=name,
            actor=_actor(),
            now_ms=now,
            expires_ms=expires,
            rate_per_s=rate,
            burst=burst,
        )
    except ValueError as exc:
        fail(f"--{exc}")
    finally:
        access.close()
    err.print(
        f"created key {new.key.key_id} ({new.key.name}) with scopes "
        f"{', '.join(new.key.scopes)}; the secret below is shown only now",
        highlight=False,
    )
    typer.echo(msgspec.json.encode(new.key).decode())
    typer.echo(new.secret)


@keys_app.command("list")
def list_keys(config: ConfigOption = None) -> None:
    """One JSON key per line (no secrets), oldest first, with its state now."""
    access = _access(config, must_exist=True)
    now = _now_ms()
    try:
        for key in access.keys.all():
            line = msgspec.json.encode(key).decode()
            typer.echo(f'{line[:-1]},"state":"{key.state(now)}"}}')
    finally:
        access.close()


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (`keys list`).")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key: the server refuses it from its next request on."""
    access = _access(config, must_exist=True)
    try:
        key = access.revoke_key(key_id, actor=_actor(), now_ms=_now_ms())
    except KeyChangeError as exc:
        fail(str(exc))
    finally:
        access.close()
    typer.echo(msgspec.json.encode(key).decode())


@audit_app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    action: Annotated[str | None, typer.Option("--action", help="Exact, or `key.`.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="key:<id> or cli:<login>.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Else stdout.")] = None,
    config: ConfigOption = None,
) -> None:
    """Every audit entry (or those matching), oldest first, with its chain hashes."""
    if fmt not in ("jsonl", "csv"):
        fail(f"--format: expected jsonl or csv, got {fmt!r}")
    chosen: ExportFormat = "csv" if fmt == "csv" else "jsonl"
    access = _access(config, must_exist=True)
    try:
        entries = access.audit.entries()
        if action is not None or actor is not None:
            entries = (
                entry
                for entry in entries
                if (actor is None or entry.actor == actor)
                and (action is None or _action_matches(entry.action, action))
            )
        out: TextIO = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            for chunk in export_lines(entries, chosen):
                out.write(chunk)
        finally:
            if output is not None:
                out.close()
    except OSError as exc:
        fail(f"cannot write {output}: {exc}")
    finally:
        access.close()


def _action_matches(action: str, wanted: str) -> bool:
    return action.startswith(wanted) if wanted.endswith(".") else action == wanted


@audit_app.command("verify")
def verify(config: ConfigOption = None) -> None:
    """Recompute the hash chain; exit 1 naming the first altered entry."""
    access = _access(config, must_exist=True)
    try:
        broken = access.audit.verify()
        seq, head = access.audit.head()
    finally:
        access.close()
    if broken is not None:
        err.print(f"audit log altered at entry {broken.seq}: {broken.reason}", highlight=False)
        raise typer.Exit(1)
    typer.echo(f"audit log intact: {seq} entries, head {head}")
