"""`leadsync sandbox serve`: run the emulator standalone and print the environment that points
leadsync at it (the values are sandbox-only credentials, generated per start)."""

from __future__ import annotations

import os
import signal
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
    """Write `KEY=value` lines, readable only by the owner (they hold sandbox credentials)."""
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    path.chmod(0o600)


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
def serve(*, port: int, sf_port: int | None, contacts: int, seed: int, env_file: Path | None,
          faults: Faults, rate_limit: int, sf_daily_limit: int, now: datetime | None,
          no_provision: bool) -> None:  # fmt: skip
    """Serve the sandbox until interrupted; print (and write) the LEADSYNC_* environment."""
    box = Sandbox(
        contacts=contacts,
        seed=seed,
        faults=faults,
        hubspot_rate_limit=rate_limit,
        sf_daily_limit=sf_daily_limit,
        provision_hubspot=not no_provision,
        now=now,
        hubspot_port=port,
        salesforce_port=sf_port if sf_port is not None else (port + 1 if port else 0),
    )
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with box:
        env = box.env
        for key, value in env.items():
            click.echo(f"{key}={value}")
        if env_file is not None:
            write_env_file(env_file, env)
            click.echo(f"# environment written to {os.fspath(env_file)}", err=True)
        click.echo(f"# sandbox clock {box.now().isoformat()}; Ctrl-C to stop", err=True)
        while not stop.wait(0.5):
            pass
