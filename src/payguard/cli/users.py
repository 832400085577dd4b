"""`payguard users …`: console users (analysts, leads, admins) from the shell.

payguard users create LOGIN --role analyst|lead|admin [--password-stdin]
payguard users list

The password is asked twice at a prompt (not echoed), or read from the first line of
stdin with `--password-stdin` (scripts, `make demo`); it is stored only as a scrypt hash
(payguard.auth.users). Creating a user is audited as `cli:<login>`. Bad input exits 2
naming the field.
"""

import sys
import time
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from payguard.auth import AUTH_DB, ROLES, AuditLog, UserError, UserStore, parse_role
from payguard.cli.common import err, fail, settings_or_exit
from payguard.cli.keys import _actor

users_app = typer.Typer(help="Create and list console users.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (else PAYGUARD_CONFIG).")
]


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Again", hide_input=True) != first:
        fail("password: the two entries differ")
    return str(first)


@users_app.command("create")
def create(
    login: Annotated[str, typer.Argument(help="The user's login (a-z 0-9 . _ -).")],
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Create a console user with a role; the password is stored as a scrypt hash."""
    try:
        chosen = parse_role(role)
    except UserError as exc:
        fail(f"--role: {exc.reason}")
    settings = settings_or_exit(config)
    password = _password(password_stdin)
    path = settings.data_dir / AUTH_DB
    users, audit = UserStore(path), AuditLog(path)
    now = time.time_ns() // 1_000_000
    try:
        user = users.create(login, chosen, password, now_ms=now)
        audit.record(_actor(), "user.create", user.login, None, {"role": user.role}, at_ms=now)
    except UserError as exc:
        fail(f"{exc.field}: {exc.reason}")
    finally:
        users.close()
        audit.close()
    err.print(f"created console user {user.login} ({user.role})", highlight=False)


@users_app.command("list")
def list_users(config: ConfigOption = None) -> None:
    """One JSON user per line (login, role, created_ms)."""
    settings = settings_or_exit(config)
    users = UserStore(settings.data_dir / AUTH_DB)
    try:
        for user in users.list():
            typer.echo(msgspec.json.encode(user).decode())
    finally:
        users.close()
