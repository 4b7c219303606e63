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


def short_record(key: str) -> str:
    """`salesforce:Contact:0035g0000000152AAA` -> `SF Contact …152AAA`."""
    system, _, rest = key.partition(":")
    object_type, _, rid = rest.partition(":")
    prefix = {"salesforce": "SF", "hubspot": "HS"}.get(system, system)
    return f"{prefix} {object_type} {'…' + rid[-6:] if len(rid) > 8 else rid}"


def print_summary(console: Console, summary: Mapping[str, Any]) -> None:
    """The cycle or demo summary: stages, changes, SLA, writes, tasks, API calls."""
    stage_counts: Mapping[str, int] = summary.get("stages", {})
    console.print(counts_table(f"{summary.get('people', 0):,} people by stage", "stage",
                               stage_counts, tuple(_STAGE_SORT)))
    if summary.get("transitions"):
        console.print(counts_table(f"Stage changes ({summary.get('stage_changes', 0):,})",
                                   "change", summary["transitions"]))
    console.print(counts_table("SLA clocks", "status", summary.get("sla", {}), _SLA_ORDER))
    dry = bool(summary.get("dry_run"))
    console.print(by_system_table("Writes, tasks and API calls" + (" (dry run)" if dry else ""), {
        "records that would be written" if dry else "records written":
            summary.get("records_written", {}),
        "follow-up tasks that would be created" if dry else "follow-up tasks created":
            summary.get("tasks_created", {}),
        "failed records": summary.get("failed", {}),
        "API calls": summary.get("api_calls", {}),
    }))
    unassigned = summary.get("tasks_unassigned", 0)
    if not isinstance(unassigned, int):
        unassigned = len(unassigned)
    if unassigned:
        console.print(f"[yellow]{unassigned} owed task(s) had no owner and no fallback owner "
                      "(set LEADSYNC_SLA__FALLBACK_OWNER)[/yellow]")
    if summary.get("top"):
        console.print(top_table(summary["top"]))
