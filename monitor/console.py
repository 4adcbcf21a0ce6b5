"""Terminal output shared by the commands: errors on stderr, JSON lines on stdout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from config import ConfigError
from fingerprints import FingerprintError
from ledger.errors import LedgerError
from litigation.errors import LitigationError
from takedown.errors import TakedownError

err_console = Console(stderr=True, highlight=False)


def progress_bar(*, quiet: bool = False) -> Progress:
    """A progress bar on stderr; shown only on a terminal, and never when ``quiet``."""
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeRemainingColumn(), console=err_console,
                    disable=quiet or not err_console.is_terminal)


def fail(message: str, *, code: int = 1) -> NoReturn:
    err_console.print(Text.assemble(("error: ", "bold red"), message))
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one clear line and exit status 1 (2 for settings)."""
    try:
        yield
    except ConfigError as exc:
        fail(str(exc), code=2)
    except (LedgerError, FingerprintError, TakedownError, LitigationError) as exc:
        fail(str(exc))


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))
