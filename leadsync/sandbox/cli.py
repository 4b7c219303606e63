"""`leadsync sandbox serve`: run the emulator standalone and print the environment that points
leadsync at it (the values are sandbox-only credentials, generated per start)."""

from __future__ import annotations

import errno
import os
import signal
import socket
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType

import click

from leadsync.sandbox.app import Sandbox
from leadsync.sandbox.faults import Faults
from leadsync.sandbox.store import parse_time


def _faults(ctx: click.Context, param: click.Parameter, value: str | None) -> Faults:
    try:
        return Faults.parse(value or "")
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _now(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO-8601 datetime", ctx=ctx, param=param
        ) from None


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """Write `KEY=value` lines, readable only by the owner (they hold sandbox credentials).
    Written whole or not at all (a temporary file renamed into place), so a script waiting
    for the file to appear never reads half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(f"{k}={v}\n" for k, v in env.items()))
    os.replace(tmp, path)


def _port_problem(port: int) -> str | None:
    """Why 127.0.0.1:`port` cannot be listened on (None: it can, or 0 = any free port)."""
    if not port:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "already in use by another program"
            return exc.strerror or type(exc).__name__
    return None


def _fail(message: str) -> None:
    click.echo(f"leadsync: {message}", err=True)
    raise click.exceptions.Exit(2)  # exitcodes.CONFIG: an argument is wrong


@click.group()
def sandbox() -> None:
    """Local HubSpot + Salesforce emulator with seeded data."""


@sandbox.command()
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="HubSpot port (0: any free)."
)
@click.option("--sf-port", type=click.IntRange(0, 65535), default=None,
              help="Salesforce (TLS) port; default PORT+1, or any free port.")  # fmt: skip
@click.option("--contacts", type=click.IntRange(0, 1_000_000), default=500, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the environment to this file (mode 0600).")  # fmt: skip
@click.option("--faults", "faults", callback=_faults, default="",
              help="e.g. latency_ms=50,error_rate=0.05,burst_429=10 or "
                   "reply_drop_rate=1,reply_drop_on=creates (docs/sandbox.md)")  # fmt: skip
@click.option("--rate-limit", type=click.IntRange(1, 10_000), default=100, show_default=True,
              help="HubSpot requests per rolling 10 seconds.")  # fmt: skip
@click.option("--sf-daily-limit", type=click.IntRange(1), default=100_000, show_default=True)
@click.option("--now", callback=_now, default=None, help="Start of the sandbox clock (ISO-8601).")
@click.option("--no-provision", is_flag=True, help="Start without leadsync's HubSpot properties.")
@click.option("--deals", is_flag=True,
              help="Add a HubSpot deal history that follows the hidden truth (for `leadsync "
              "review`; docs/review.md).")
def serve(*, port: int, sf_port: int | None, contacts: int, seed: int, env_file: Path | None,
          faults: Faults, rate_limit: int, sf_daily_limit: int, now: datetime | None,
          no_provision: bool, deals: bool) -> None:  # fmt: skip
    """Serve the sandbox until interrupted; print (and write) the LEADSYNC_* environment.

    With --env-file the file appears (whole) once the sandbox is ready, and is removed when it
    stops (its credentials die with it): a script can wait for it before sourcing it."""
    sf_port = sf_port if sf_port is not None else (port + 1 if port else 0)
    for option, number in (("--port", port), ("--sf-port", sf_port)):
        problem = _port_problem(number)
        if problem:
            _fail(f"{option} {number}: cannot listen on 127.0.0.1:{number} ({problem}); "
                  "expected a free port, or 0 for any free port")
    if env_file is not None:
        if env_file.is_dir():
            _fail(f"--env-file {env_file}: is a directory; expected a file path")
        if not env_file.parent.is_dir():
            _fail(f"--env-file {env_file}: directory {env_file.parent} does not exist")
        env_file.unlink(missing_ok=True)  # a stale file from an earlier run must not be sourced
    box = Sandbox(
        contacts=contacts,
        seed=seed,
        faults=faults,
        hubspot_rate_limit=rate_limit,
        sf_daily_limit=sf_daily_limit,
        provision_hubspot=not no_provision,
        now=now,
        hubspot_port=port,
        salesforce_port=sf_port,
        deals=deals,
    )
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        box.start()
    except OSError as exc:  # a port taken between the check and the bind
        _fail(f"--port/--sf-port: cannot listen ({exc.strerror or type(exc).__name__}); "
              "expected free ports, or 0 for any free port")
    try:
        env = box.env
        for key, value in env.items():
            click.echo(f"{key}={value}")
        if env_file is not None:
            try:
                write_env_file(env_file, env)
            except OSError as exc:
                _fail(f"--env-file {env_file}: cannot write ({exc.strerror}); "
                      "expected a writable file path")
            click.echo(f"# environment written to {os.fspath(env_file)}", err=True)
        click.echo(f"# sandbox clock {box.now().isoformat()}; Ctrl-C to stop", err=True)
        while not stop.wait(0.5):
            pass
    finally:
        box.stop()
        if env_file is not None:
            env_file.unlink(missing_ok=True)
