"""`leadsync demo`: the main job on its embedded default.

Starts the sandbox in-process, seeds a realistic data set, runs a full cycle and then incremental
cycles over simulated days (people browse, reps call, leads convert), with in-memory state, and
shows what happened: stage changes, top scores with reasons, tasks created, API calls used.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from leadsync import exitcodes
from leadsync.commands.common import (
    MAX_ERRORS,
    FiniteFloatRange,
    checked_settings,
    console,
    environ,
    err_console,
    hold_logs_until_exit,
    outcome,
    reported,
)
from leadsync.commands.demo_routing import routing_line, routing_summary
from leadsync.commands.render import print_summary
from leadsync.followups import local_time
from leadsync.report import CycleReport

if TYPE_CHECKING:
    from leadsync.sandbox.store import SandboxData


def _before_seeding(quiet: dict[str, str], review_html: Path) -> None:
    """The user's own settings and rules file, and where the review page goes: checked before
    anything is seeded or run."""
    from leadsync.commands.review import _writable

    with environ(quiet):
        checked_settings()
    _writable(review_html, "--review-html")


@click.command()
@click.option("--contacts", default=1200, show_default=True, type=click.IntRange(10, 200_000),
              help="People to seed in the sandbox.")
@click.option("--days", default=3, show_default=True, type=click.IntRange(1, 60),
              help="Simulated days after the first full cycle.")
@click.option("--step-hours", default=6.0, show_default=True, type=FiniteFloatRange(0.5, 48),
              help="Simulated hours between two cycles.")
@click.option("--seed", default=42, show_default=True, help="Data set seed (deterministic).")
@click.option("--review-html", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(tempfile.gettempdir()) / "leadsync-review.html", show_default=True,
              help="Where the closing review writes its HTML page.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--business-hours", is_flag=True,
              help="Count SLA hours in business hours (Tokyo, 9-18 on weekdays, Japanese "
                   "holidays) when the rules file has no sla.business_hours.")
@click.option("--routing", is_flag=True,
              help="Add queue-owned, unowned and inactive-owner leads and reps in two "
                   "territories to the sandbox, and route MQLs (the example rules of "
                   "docs/routing.md when the rules file has no routing section).")
@reported()
def demo(*, contacts: int, days: int, step_hours: float, seed: int, review_html: Path,
         as_json: bool, business_hours: bool, routing: bool) -> None:
    """Run leadsync against a seeded local sandbox of HubSpot and Salesforce."""
    from dataclasses import replace

    from leadsync.commands.demo_sla import sla_hours_line, sla_hours_summary, with_business_hours
    from leadsync.pipeline import run_job
    from leadsync.runtime import build_runtime
    from leadsync.sandbox import Sandbox, seed_routing
    from leadsync.state import InMemoryStateStore

    cycles = 1 + int(days * 24 / step_hours)
    quiet = {} if os.environ.get("LEADSYNC_LOG_LEVEL") else {"LEADSYNC_LOG_LEVEL": "WARNING"}
    _before_seeding(quiet, review_html)
    # Pro tier (190 per 10 s): HubSpot's Salesforce integration needs Pro or Enterprise
    # deals=True: a HubSpot deal history for the closing review (the sync never reads deals)
    with Sandbox(contacts=contacts, seed=seed, hubspot_rate_limit=190, deals=True) as sb, environ(
        {**sb.env, **quiet}
    ):
        settings = checked_settings().model_copy(update={"redis_url": None})
        zone = settings.zone
        runtime = build_runtime(settings, state=InMemoryStateStore(), clock=sb.now)
        if business_hours:
            runtime = replace(runtime, model=with_business_hours(runtime.model))
        runtime = seed_routing.with_routing_cases(sb, runtime) if routing else runtime
        started = sb.now()
        reports: list[CycleReport] = []
        # log lines wait until the tables are printed (never inside the bar or the tables)
        hold_logs_until_exit(err_console.is_terminal and not as_json)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err_console, disable=as_json,
                      transient=True) as progress:
            bar = progress.add_task("cycle 1: full read and first evaluation", total=cycles)
            reports.append(run_job(runtime, "full"))
            progress.advance(bar)
            for i in range(2, cycles + 1):
                sb.simulate(hours=step_hours)
                progress.update(bar, description=f"cycle {i}: {_when(sb.now(), zone)}")
                # the last cycle is the nightly full re-evaluation (decay for everyone)
                reports.append(run_job(runtime, "full" if i == cycles else "incremental"))
                progress.advance(bar)
        summary = summarise(reports, sb.stats(), sb.data)
        summary.update(simulated={"from": local_time(started, zone),
                                  "to": local_time(sb.now(), zone),
                                  "timezone": settings.timezone},
                       sla_hours=sla_hours_summary(runtime.model, sb.data),
                       routing=routing_summary(runtime.model, reports))
        from leadsync.commands.review import headline, run_review

        # the review's headline: the model checked against the history (docs/review.md)
        summary["review"] = headline(run_review(runtime, quiet=True, html_path=review_html,
                                                say=lambda _line: None))
    failed = sum(summary["failed"].values()) + summary["task_failures"]
    stopped = summary["stopped"][-1] if summary["stopped"] else None
    code = exitcodes.for_outcome(failed=failed, stopped_reason=stopped)
    errors = [f"stopped early: {r}" for r in summary["stopped"]] + summary.pop("errors")
    summary = {**summary, **outcome(code, stopped_reason=stopped, failed=summary["failed"],
                                    errors=errors)}
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, default=str))
    else:
        console.print(f"[bold]leadsync demo[/bold]: {contacts:,} seeded people, {len(reports)} "
                      f"cycles over {days} simulated day(s) ({summary['simulated']['from']} to "
                      f"{summary['simulated']['to']}), model {runtime.model.version}")
        print_summary(console, summary)
        console.print(sla_hours_line(summary["sla_hours"], runtime.model.sla.mql_hours) + "\n"
                      + routing_line(summary["routing"]), highlight=False)
        dup = sum(summary["duplicate_task_keys"].values())
        console.print(f"Duplicate follow-up task keys seen by the CRMs: {dup}")
        from leadsync.commands.review import print_headline

        print_headline(summary["review"])
    _finish(code, failed, errors, as_json)


def _finish(code: int, failed: int, errors: list[str], as_json: bool) -> None:
    """Exit with `code`; without --json, what failed or stopped is named on stderr first (as
    `leadsync sync` does): an exit 1 or 3 never comes without its reason."""
    if code and not as_json:
        if failed:
            err_console.print(f"leadsync: {failed:,} record(s) or task(s) failed", style="yellow",
                              markup=False)
        for line in errors[:MAX_ERRORS]:
            err_console.print(f"leadsync: {line}", style="yellow", markup=False)
    if code:
        raise click.exceptions.Exit(code)


def _when(at: datetime, zone: tzinfo) -> str:
    local = at.astimezone(zone)
    return f"{local:%a %d %b} {local_time(at, zone)[11:]}"


def head_count(data: SandboxData, person_ids: Iterable[str]) -> dict[str, int]:
    """How the seeded people became the people leadsync resolved (the sandbox knows the truth),
    each person named by its primary record's key:
    `counted_twice` seeded people whose records could not be joined (no email in common and no
    CRM link), `merged` seeded people who share an email with another and were resolved into
    one, `extra_records` records no seeded person owns (an open duplicate Lead without email).
    Always `people == seeded + counted_twice - merged + extra_records`."""
    seeded_of: dict[str, int] = {}
    for person in data.people:
        keys = [f"hubspot:contact:{h}" for h in person.hs_ids]
        if person.sf_lead_id:
            keys.append(f"salesforce:Lead:{person.sf_lead_id}")
        if person.sf_contact_id:
            keys.append(f"salesforce:Contact:{person.sf_contact_id}")
        seeded_of.update(dict.fromkeys(keys, person.index))
    ids = list(person_ids)
    per_seeded = Counter(seeded_of.get(pid) for pid in ids)
    extra = per_seeded.pop(None, 0)
    return {"seeded": len(data.people), "people": len(ids),
            "counted_twice": sum(n - 1 for n in per_seeded.values()),
            "merged": len(data.people) - len(per_seeded), "extra_records": extra}


def summarise(reports: list[CycleReport], sandbox_stats: dict[str, Any],
              data: SandboxData | None = None) -> dict[str, Any]:
    """Fold the cycles into one picture: final stage of everyone, what changed on the way.

    Head counts come from the last full cycle (the demo's last cycle re-reads everyone): a
    person's id can change on the way (a converted Lead becomes its Contact), so a union over
    cycles would count them twice. With the sandbox's `data`, `head_count` says how the
    seeded people became these people."""
    outcomes: dict[str, tuple[str, str, int]] = {}
    primary: dict[str, str] = {}
    totals: dict[str, Counter[str]] = {k: Counter() for k in
                                       ("records_written", "tasks_created", "failed",
                                        "api_calls", "transitions", "account_records_written",
                                        "mqa_tasks_created")}
    top: list[dict[str, Any]] = []
    unassigned: set[str] = set()
    errors: list[str] = []
    task_failures = 0
    for rep in reports:
        task_failures += len(rep.task_failures)
        for item in [*rep.failures, *rep.task_failures]:
            if item.get("reason") and item["reason"] not in errors:
                errors.append(item["reason"])
        outcomes.update(rep.outcomes)
        primary.update(rep.primary)
        totals["records_written"].update(rep.records_written)
        totals["tasks_created"].update(rep.tasks_created)
        totals["account_records_written"].update(rep.account_records_written)
        totals["mqa_tasks_created"].update(rep.mqa_tasks_created)
        totals["failed"].update(rep.failed)
        totals["api_calls"].update(rep.api_calls)
        totals["transitions"].update(rep.transitions)
        unassigned.update(rep.tasks_unassigned)
        top = rep.top if rep.job == "full" else top
    last_full = next((r for r in reversed(reports) if r.job == "full"), None)
    if last_full is not None:
        outcomes = dict(last_full.outcomes)
    sla_by_stage: dict[str, Counter[str]] = {}
    for stage, sla, _ in outcomes.values():
        if sla != "none":
            sla_by_stage.setdefault(stage, Counter())[sla] += 1
    summary: dict[str, Any] = {
        "people": len(outcomes),
        "cycles": len(reports),
        "stages": dict(Counter(stage for stage, _, _ in outcomes.values())),
        "stage_changes": sum(totals["transitions"].values()),
        "transitions": dict(totals["transitions"]),
        "sla": dict(Counter(sla for _, sla, _ in outcomes.values())),
        "sla_by_stage": {stage: dict(c) for stage, c in sla_by_stage.items()},
        "records_written": dict(totals["records_written"]),
        "tasks_created": dict(totals["tasks_created"]),
        # accounts (docs/accounts.md): by MQA or not as the last full cycle saw them
        "accounts": {"evaluated": last_full.accounts_evaluated if last_full else 0,
                     "mqa": last_full.accounts_mqa if last_full else 0,
                     "not_mqa": (last_full.accounts_evaluated - last_full.accounts_mqa)
                     if last_full else 0},
        "account_records_written": dict(totals["account_records_written"]),
        "mqa_tasks_created": dict(totals["mqa_tasks_created"]),
        "top_accounts": list(last_full.top_accounts) if last_full else [],
        "accounts_not_evaluated": sum(r.accounts_not_evaluated for r in reports),
        "failed": dict(totals["failed"]),
        "api_calls": dict(totals["api_calls"]),
        "duplicate_task_keys": {s: v.get("duplicate_task_keys", 0)
                                for s, v in sandbox_stats.items() if isinstance(v, dict)},
        "tasks_unassigned": len(unassigned),
        "stopped": [r.stopped_reason for r in reports if r.stopped_reason],
        "task_failures": task_failures,
        "errors": errors,
        "top": top,
    }
    if data is not None:
        with data.lock:
            summary["head_count"] = head_count(data, (primary.get(p, p) for p in outcomes))
    return summary
