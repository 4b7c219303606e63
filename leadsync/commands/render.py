"""Summary tables a person can read at a glance (rich)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from leadsync.scoring.profile import STAGE_ORDER

_STAGE_SORT = {s: i for i, s in enumerate((*STAGE_ORDER, "recycled", "disqualified"))}
_SLA_ORDER = ("none", "on_track", "due_soon", "breached", "met")


def counts_table(title: str, column: str, counts: Mapping[str, int],
                 order: tuple[str, ...] | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(column)
    table.add_column("count", justify="right")
    keys = sorted(counts, key=lambda k: (order.index(k) if order and k in order else 99, k))
    for key in keys:
        table.add_row(key, f"{counts[key]:,}")
    if not keys:
        table.add_row("—", "0")
    return table


def by_system_table(title: str, rows: Mapping[str, Mapping[str, int]]) -> Table:
    """rows: metric -> {system: n}; one column per system."""
    systems = sorted({s for per in rows.values() for s in per})
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for system in systems:
        table.add_column(system, justify="right")
    for metric, per in rows.items():
        table.add_row(metric, *(f"{per.get(s, 0):,}" for s in systems))
    return table


def top_table(top: list[dict[str, Any]]) -> Table:
    table = Table(title="Top scores (why: the three biggest reasons)", title_justify="left")
    for col, justify in (("record", "left"), ("score", "right"), ("grade", "center"),
                         ("stage", "left"), ("why", "left")):
        why = col == "why"
        table.add_column(col, justify=justify, no_wrap=not why,  # type: ignore[arg-type]
                         overflow="fold" if why else "ellipsis", min_width=8 if why else None)
    for row in top:
        reasons = "\n".join(str(row["reasons"]).split("; ")[:3])  # one reason a line
        table.add_row(short_record(row["person"]), str(row["score"]), row["grade"],
                      row["stage"], reasons)
    return table


def top_accounts_table(top: list[dict[str, Any]]) -> Table:
    """The highest-scoring accounts (docs/accounts.md) with their three biggest reasons."""
    table = Table(title="Top accounts (why: the three biggest reasons)", title_justify="left")
    for col, justify in (("account", "left"), ("score", "right"), ("MQA", "center"),
                         ("engaged", "right"), ("why", "left")):
        why = col == "why"
        table.add_column(col, justify=justify, no_wrap=not why,  # type: ignore[arg-type]
                         overflow="fold" if why else "ellipsis", min_width=8 if why else None)
    for row in top:
        reasons = "\n".join(str(row["reasons"]).split("; ")[:3]) or "—"
        name = row.get("domain") or row.get("name") or row["account"]
        table.add_row(str(name), str(row["score"]), "yes" if row.get("mqa") else "no",
                      f"{row.get('engaged', 0)}/{row.get('members', 0)}", reasons)
    return table


def short_record(key: str) -> str:
    """`salesforce:Contact:0035g0000000152AAA` -> `SF Contact …152AAA`."""
    system, _, rest = key.partition(":")
    object_type, _, rid = rest.partition(":")
    prefix = {"salesforce": "SF", "hubspot": "HS"}.get(system, system)
    return f"{prefix} {object_type} {'…' + rid[-6:] if len(rid) > 8 else rid}"


def sla_by_stage_table(by_stage: Mapping[str, Mapping[str, int]]) -> Table:
    """SLA clock statuses per stage (MQL: first contact; SQL: sales action), with a total."""
    stages = [s for s in ("mql", "sql") if s in by_stage] + sorted(
        s for s in by_stage if s not in ("mql", "sql"))
    table = Table(title="SLA clocks of MQLs (first sales contact) and SQLs (sales action)",
                  title_justify="left")
    table.add_column("status")
    for stage in stages:
        table.add_column(stage.upper(), justify="right")
    table.add_column("total", justify="right")
    statuses = [s for s in _SLA_ORDER if any(s in by_stage[st] for st in stages)]
    for status in statuses:
        row = [by_stage[st].get(status, 0) for st in stages]
        table.add_row(status, *(f"{n:,}" for n in row), f"{sum(row):,}")
    if not statuses:
        table.add_row("—", *("0" for _ in stages), "0")
    return table


def head_count_note(head: Mapping[str, int]) -> str:
    """Why the people counted differ from the people seeded (demo only)."""
    parts = []
    if head.get("counted_twice"):
        parts.append(f"{head['counted_twice']:,} counted twice (their HubSpot and Salesforce "
                     "records share no email and no CRM link, so nothing joins them)")
    if head.get("merged"):
        parts.append(f"{head['merged']:,} merged into another seeded person (same email)")
    if head.get("extra_records"):
        parts.append(f"{head['extra_records']:,} extra duplicate record(s) without email")
    detail = "; ".join(parts) if parts else "one person each"
    return (f"{head['seeded']:,} seeded people resolve to {head['people']:,} people by "
            f"email and CRM links: {detail}.")


def print_summary(console: Console, summary: Mapping[str, Any]) -> None:
    """The cycle or demo summary: stages, changes, SLA, writes, tasks, API calls."""
    stage_counts: Mapping[str, int] = summary.get("stages", {})
    console.print(counts_table(f"{summary.get('people', 0):,} people by stage", "stage",
                               stage_counts, tuple(_STAGE_SORT)))
    if summary.get("head_count"):
        console.print(head_count_note(summary["head_count"]))
    if summary.get("transitions"):
        console.print(counts_table(f"Stage changes ({summary.get('stage_changes', 0):,})",
                                   "change", summary["transitions"]))
    if "sla_by_stage" in summary:
        console.print(sla_by_stage_table(summary["sla_by_stage"]))
    else:
        console.print(counts_table("SLA clocks", "status", summary.get("sla", {}), _SLA_ORDER))
    dry = bool(summary.get("dry_run"))
    rows: dict[str, Mapping[str, int]] = {
        "records that would be written" if dry else "records written":
            summary.get("records_written", {}),
        "follow-up tasks that would be created" if dry else "follow-up tasks created":
            summary.get("tasks_created", {}),
        "failed records": summary.get("failed", {}),
    }
    if summary.get("account_records_written") or summary.get("mqa_tasks_created"):
        rows["account records that would be written" if dry else "account records written"] = \
            summary.get("account_records_written", {})
        rows["of these tasks, MQA tasks (accounts)"] = summary.get("mqa_tasks_created", {})
        rows["failed records"] = rows.pop("failed records")  # after the accounts' rows
    if summary.get("drift"):  # hand edits of leadsync's fields, by CRM (docs/connectors.md)
        rows["hand-edited leadsync fields restored"] = {
            system: sum(fields.values()) for system, fields in summary["drift"].items()}
    rows["API calls"] = summary.get("api_calls", {})
    console.print(by_system_table("Writes, tasks and API calls" + (" (dry run)" if dry else ""),
                                  rows))
    accounts = summary.get("accounts")
    if isinstance(accounts, Mapping) and accounts.get("evaluated"):
        console.print(f"Accounts evaluated: {accounts['evaluated']:,} "
                      f"(MQA {accounts.get('mqa', 0):,}, not MQA {accounts.get('not_mqa', 0):,})")
    if summary.get("accounts_not_evaluated"):
        console.print(f"[yellow]Accounts not evaluated in {summary['accounts_not_evaluated']} "
                      "cycle(s): a CRM's API budget stopped the account reads (the people are "
                      "retried next cycle)[/yellow]")
    if summary.get("top_accounts"):
        console.print(top_accounts_table(summary["top_accounts"]))
    unassigned = summary.get("tasks_unassigned", 0)
    if not isinstance(unassigned, int):
        unassigned = len(unassigned)
    if unassigned:
        console.print(f"[yellow]{unassigned} owed task(s) had no owner (or a queue, which "
                      "cannot take a task) and no fallback owner "
                      "(set LEADSYNC_SLA__FALLBACK_OWNER)[/yellow]")
    if summary.get("top"):
        console.print(top_table(summary["top"]))
