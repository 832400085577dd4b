"""What every command shares: the error console and the one way a command fails (a line
on stderr and exit code 2, never a traceback)."""

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from payguard.config import Settings, load_settings

err = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Print `message` as an error and exit 2 (bad input or settings)."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def settings_or_exit(config: Path | None) -> Settings:
    """The settings from `config` (else the environment), or exit 2 naming the problem."""
    try:
        return load_settings(config)
    except (ValueError, OSError) as exc:
        fail(str(exc))
