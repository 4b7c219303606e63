"""What the demo shows of routing (docs/routing.md): `leadsync demo --routing` adds the
sandbox's routing cases and, when the rules file has no `routing:` section, the example rules
(the sandbox's `seed_routing.with_routing_cases`); the summary says how many MQLs were
routed, by rule, and how many needed an owner and got none."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from leadsync.report import CycleReport
from leadsync.scoring.model import ScoringModel


def routing_summary(model: ScoringModel, reports: Sequence[CycleReport]) -> dict[str, Any]:
    """The demo's JSON key `routing`: rules, MQLs/SQLs routed by rule ("fallback": the fallback
    owner), and people left without an owner (distinct, over all cycles)."""
    routed: Counter[str] = Counter()
    for report in reports:
        routed.update(report.routed)
    unrouted = {key for report in reports for key in report.routing_unrouted}
    return {"enabled": model.routing.enabled, "rules": len(model.routing.rules),
            "routed": sum(routed.values()), "by_rule": dict(routed.most_common()),
            "unrouted": len(unrouted)}


def routing_line(summary: dict[str, Any]) -> str:
    if not summary["enabled"]:
        return "Routing: off (no routing section in the rules file; see leadsync demo --routing)"
    rules = ", ".join(f"{rule} {n}" for rule, n in summary["by_rule"].items()) or "none"
    return (f"Routed MQLs/SQLs: {summary['routed']} ({rules}); needing an owner and given "
            f"none: {summary['unrouted']}")
