"""`leadsync sync [--once] [--dry-run] [--full]`: cycles against the configured CRMs."""

from __future__ import annotations

import json
import logging
import time

import click

from leadsync.commands.common import console, err_console, fail, settings_or_exit
from leadsync.commands.render import print_summary
from leadsync.lease import PEOPLE_LOCK  # the workers' lock: never two writers at once
from leadsync.pipeline import Job

log = logging.getLogger("leadsync.sync")


@click.command()
@click.option("--once", is_flag=True, help="Run one cycle and exit (default: loop).")
@click.option("--dry-run", is_flag=True, help="Compute and report everything; write nothing.")
@click.option("--full", is_flag=True, help="Re-evaluate everyone, not only what changed.")
@click.option("--json", "as_json", is_flag=True, help="Print each cycle's report as JSON.")
def sync(once: bool, dry_run: bool, full: bool, as_json: bool) -> None:
    """Pull, score, write back and create follow-up tasks."""
    from leadsync.connectors.base import AuthError, TransientError
    from leadsync.pipeline import run_job
    from leadsync.runtime import build_runtime

    settings = settings_or_exit()
    runtime = build_runtime(settings)
    if not runtime.connectors:
        fail("no CRM is configured: set LEADSYNC_HUBSPOT__ACCESS_TOKEN and/or the "
             "LEADSYNC_SALESFORCE__* credentials (see README, Settings)")
    job: Job = "full" if full else "incremental"
    while True:
        lock = runtime.state.lock(PEOPLE_LOCK, float(settings.job_lock_seconds))
        if not lock.acquire():
            err_console.print("another leadsync cycle holds the lock: skipped")
        else:
            try:
                # a live status line on a terminal; nothing when stderr is a pipe or a file
                with err_console.status("starting a cycle") as status:
                    report = run_job(runtime, job, dry_run=dry_run, lock=lock,
                                     progress=status.update)
            except AuthError as exc:
                fail(f"authentication or configuration problem: {exc}", 2)
            except TransientError as exc:
                err_console.print(f"[yellow]cycle failed after retries: {exc}[/yellow]")
                report = None
            finally:
                lock.release()
            if report is not None:
                if as_json:
                    click.echo(json.dumps(report.to_dict(), ensure_ascii=False, default=str))
                else:
                    title = "dry run: nothing was written" if dry_run else "cycle finished"
                    console.print(f"[bold]{title}[/bold] ({report.job}, "
                                  f"{report.duration_s:.1f} s)")
                    print_summary(console, report.to_dict())
                if report.stopped_reason:
                    err_console.print(f"[yellow]stopped early: {report.stopped_reason}[/yellow]")
        if once:
            return
        time.sleep(settings.sync_interval_seconds)
