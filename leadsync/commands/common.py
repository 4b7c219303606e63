"""What the commands share: settings with readable errors, environment overlays, the console."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import NoReturn

import click
from rich.console import Console

from leadsync.config.settings import Settings, SettingsError, load_settings
from leadsync.logs import configure_logging

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def settings_or_exit() -> Settings:
    """Load settings; on a bad setting print one message naming the variable and exit 2."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        err_console.print(f"[red]leadsync: {exc}[/red]")
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    return settings


@contextmanager
def environ(overlay: Mapping[str, str]) -> Iterator[None]:
    """Temporarily overlay environment variables (the sandbox's LEADSYNC_* settings)."""
    saved = {k: os.environ.get(k) for k in overlay}
    os.environ.update(overlay)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]leadsync: {message}[/red]")
    raise click.exceptions.Exit(code)
