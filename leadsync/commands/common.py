"""What the commands share: settings checked as a whole, one way to fail (a message naming the
thing at fault, the exit code of `leadsync.exitcodes`, and with `--json` the outcome object),
environment overlays, the consoles."""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from leadsync import exitcodes
from leadsync.config.settings import Settings, SettingsError, load_settings
from leadsync.logs import configure_logging, redact

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)
# messages on a pipe or in a file are whole lines (a terminal wraps them itself)
console.soft_wrap = not console.is_terminal
err_console.soft_wrap = not err_console.is_terminal
F = TypeVar("F", bound=Callable[..., Any])
_JSON = "leadsync.json"
MAX_ERRORS = 20  # distinct error messages listed in a --json outcome


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses nan and inf (click's bounds compare false with nan, so
    `--step-hours nan` would pass the range and fail later as a traceback)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def json_mode() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().meta.get(_JSON))


def outcome(code: int, *, stopped_reason: str | None = None,
            failed: Mapping[str, int] | None = None, errors: list[str] | None = None
            ) -> dict[str, Any]:
    """The keys every `--json` object carries, whatever happened."""
    return {"ok": code == exitcodes.OK, "exit_code": code, "outcome": exitcodes.MEANING[code],
            "stopped_reason": stopped_reason, "failed": dict(failed or {}),
            "errors": [redact(e) for e in (errors or [])][:MAX_ERRORS]}


def fail(message: str, code: int = exitcodes.FAILED_RECORDS, *,
         stopped_reason: str | None = None) -> NoReturn:
    """Print one redacted line `leadsync: <message>` on stderr (and the outcome object on
    stdout with --json), then exit with `code`."""
    text = redact(message)
    err_console.print(f"leadsync: {text}", style="red", markup=False, highlight=False,
                      soft_wrap=not err_console.is_terminal)
    if json_mode():
        click.echo(json.dumps(outcome(code, stopped_reason=stopped_reason, errors=[text]),
                              ensure_ascii=False))
    raise click.exceptions.Exit(code)


def classify(exc: BaseException) -> tuple[int, str, str] | None:
    """(exit code, stopped_reason word, message) for the errors a command expects, or None."""
    import redis

    from leadsync.config.rules import RulesError
    from leadsync.connectors.base import AuthError, BudgetExhausted, TransientError
    from leadsync.state import StateError

    kinds: list[tuple[type[BaseException] | tuple[type[BaseException], ...], int, str, str]] = [
        ((SettingsError, RulesError), exitcodes.CONFIG, "settings", "{exc}"),
        (AuthError, exitcodes.UNREACHABLE, "auth", "authentication or permission refused: {exc}"),
        (TransientError, exitcodes.UNREACHABLE, "unreachable", "{exc}"),
        (BudgetExhausted, exitcodes.STOPPED_EARLY, "budget", "stopped early: {exc}"),
        (StateError, exitcodes.UNREACHABLE, "unreachable", "{exc}"),
        (redis.RedisError, exitcodes.UNREACHABLE, "unreachable",
         "LEADSYNC_REDIS_URL: Redis failed ({name}: {exc})"),
    ]
    for types, code, word, template in kinds:
        if isinstance(exc, types):
            return code, word, template.format(exc=exc, name=type(exc).__name__)
    if isinstance(exc, OSError) and exc.filename:
        # a file or directory named on the command line or in a setting
        return (exitcodes.CONFIG, "settings",
                f"{exc.filename}: {exc.strerror or type(exc).__name__}; expected a path "
                "leadsync can open")
    return None


def reported(as_json_param: str | None = "as_json") -> Callable[[F], F]:
    """Wrap a command: remember `--json`, and turn the errors `classify` knows into one
    message and their exit code (anything else reaches the last-resort handler in cli.py)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            if as_json_param and kwargs.get(as_json_param):
                ctx.find_root().meta[_JSON] = True
            try:
                return fn(*args, **kwargs)
            except (click.exceptions.Exit, click.ClickException, click.Abort):
                raise
            except Exception as exc:
                known = classify(exc)
                if known is None:
                    raise
                code, word, message = known
                fail(message, code, stopped_reason=word)

        return run  # type: ignore[return-value]

    return wrap


def settings_or_exit() -> Settings:
    """Load and check the settings as a whole; on a bad setting print one message naming each
    variable at fault and exit 2 (exitcodes.CONFIG)."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        fail(str(exc), exitcodes.CONFIG, stopped_reason="settings")
    configure_logging(settings.log_level)
    return settings


def checked_settings() -> Settings:
    """Settings, then the rules file they name, both checked before any work (exit 2)."""
    from leadsync.config.rules import RulesError
    from leadsync.runtime import load_model

    settings = settings_or_exit()
    try:
        load_model(settings)
    except RulesError as exc:
        fail(str(exc), exitcodes.CONFIG, stopped_reason="settings")
    return settings


def hold_logs_until_exit(active: bool) -> None:
    """Hold leadsync's log lines back until the command ends (`leadsync.logs.held_logs`), so
    none land inside a progress bar or between it and the tables printed after it."""
    from leadsync.logs import held_logs

    held = held_logs(active)
    held.__enter__()
    click.get_current_context().call_on_close(lambda: held.__exit__(None, None, None))


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
