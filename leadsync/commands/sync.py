"""`leadsync sync [--once] [--dry-run] [--full]`: cycles against the configured CRMs.

Exit codes (leadsync.exitcodes): 0 the cycle finished and every record was written; 1 it
finished with failed records or tasks; 3 it stopped early (API budget, lock lost); 4 a CRM or
Redis was unreachable, or refused our credentials; 2 settings or rules are wrong. With `--json`
each cycle prints one object carrying `ok`, `exit_code`, `stopped_reason`, `failed` and `errors`,
also when the cycle could not run.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import click

from leadsync import exitcodes
from leadsync.commands.common import (
    MAX_ERRORS,
    checked_settings,
    classify,
    console,
    err_console,
    fail,
    outcome,
    reported,
)
from leadsync.commands.render import print_summary
from leadsync.lease import PEOPLE_LOCK  # the workers' lock: never two writers at once
from leadsync.pipeline import Job
from leadsync.report import CycleReport

log = logging.getLogger("leadsync.sync")


def report_outcome(report: CycleReport) -> dict[str, Any]:
    """The report as JSON plus the outcome keys; the exit code follows exitcodes.for_outcome."""
    data = report.to_dict()
    failed = sum(report.failed.values()) + len(report.task_failures)
    code = exitcodes.for_outcome(failed=failed, stopped_reason=report.stopped_reason)
    errors: list[str] = []
    if report.stopped_reason:
        errors.append(f"stopped early: {report.stopped_reason}")
    for item in [*report.failures, *report.task_failures]:
        reason = str(item.get("reason", ""))
        if reason and reason not in errors:
            errors.append(reason)
    out = outcome(code, stopped_reason=report.stopped_reason, failed=data["failed"],
                  errors=errors[:MAX_ERRORS])
    return {**data, **out}


@click.command()
@click.option("--once", is_flag=True, help="Run one cycle and exit (default: loop).")
@click.option("--dry-run", is_flag=True, help="Compute and report everything; write nothing.")
@click.option("--full", is_flag=True, help="Re-evaluate everyone, not only what changed.")
@click.option("--json", "as_json", is_flag=True, help="Print each cycle's report as JSON.")
@reported()
def sync(once: bool, dry_run: bool, full: bool, as_json: bool) -> None:
    """Pull, score, write back and create follow-up tasks (exit codes: see the README)."""
    from leadsync.connectors.base import AuthError, TransientError
    from leadsync.runtime import build_runtime

    settings = checked_settings()
    runtime = build_runtime(settings)
    if not runtime.connectors:
        fail("no CRM is configured: set LEADSYNC_HUBSPOT__ACCESS_TOKEN and/or the "
             "LEADSYNC_SALESFORCE__* credentials (see README, Settings)", exitcodes.CONFIG,
             stopped_reason="settings")
    job: Job = "full" if full else "incremental"
    while True:
        code = exitcodes.OK
        lock = runtime.state.lock(PEOPLE_LOCK, float(settings.job_lock_seconds))
        if not lock.acquire():
            err_console.print("another leadsync cycle holds the lock: skipped")
            code = exitcodes.STOPPED_EARLY
            if as_json:
                click.echo(json.dumps(outcome(code, stopped_reason="locked", errors=[
                    "another leadsync cycle holds the lock"])))
        else:
            try:
                code = _one_cycle(runtime, job, dry_run=dry_run, as_json=as_json, lock=lock)
            except AuthError:
                raise  # not retried: reported by `reported` (exit 4)
            except TransientError as exc:
                if once:
                    raise
                # the loop goes on: the next cycle retries from intact cursors
                known = classify(exc)
                message = known[2] if known else str(exc)
                err_console.print(f"leadsync: cycle failed: {message}", style="yellow",
                                  markup=False)
                if as_json:
                    click.echo(json.dumps(outcome(exitcodes.UNREACHABLE,
                                                  stopped_reason="unreachable",
                                                  errors=[message]), ensure_ascii=False))
            finally:
                lock.release()
        if once:
            if code:
                raise click.exceptions.Exit(code)
            return
        time.sleep(settings.sync_interval_seconds)


def _one_cycle(runtime: Any, job: Job, *, dry_run: bool, as_json: bool, lock: Any) -> int:
    from leadsync.logs import held_logs
    from leadsync.pipeline import run_job

    # a live status line on a terminal; nothing when stderr is a pipe or a file. On a
    # terminal, log lines wait until the tables are printed (never inside the live output).
    with held_logs(err_console.is_terminal and not as_json):
        with err_console.status("starting a cycle") as status:
            report = run_job(runtime, job, dry_run=dry_run, lock=lock, progress=status.update,
                             keep_people=False)
        return _show(report, dry_run=dry_run, as_json=as_json, model=runtime.model)


def _show(report: CycleReport, *, dry_run: bool, as_json: bool, model: Any) -> int:
    from leadsync.commands.demo_routing import routing_summary

    # `routing` as `leadsync demo --json` has it (rules, routed by rule, left without owner)
    result = {**report_outcome(report), "routing": routing_summary(model, [report])}
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, default=str))
    else:
        title = "dry run: nothing was written" if dry_run else "cycle finished"
        console.print(f"[bold]{title}[/bold] ({report.job}, {report.duration_s:.1f} s)")
        print_summary(console, report.to_dict())
    if report.stopped_reason:
        err_console.print(f"leadsync: stopped early: {report.stopped_reason}", style="yellow",
                          markup=False)
    failed = sum(report.failed.values()) + len(report.task_failures)
    if failed:
        err_console.print(f"leadsync: {failed:,} record(s) or task(s) failed; they are retried "
                          "next cycle (see `failures` in --json)", style="yellow", markup=False)
    code: int = result["exit_code"]
    return code
