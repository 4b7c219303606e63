"""What the demo shows of routing (docs/routing.md): `leadsync demo --routing` adds the
sandbox's routing cases (queue-owned, unowned and inactive-owner leads, reps in two
territories) and, when the rules file has no `routing:` section, the example rules; the summary
says how many MQLs were routed, by rule, and how many needed an owner and got none."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from leadsync.report import CycleReport
from leadsync.scoring.model import ScoringModel

if TYPE_CHECKING:
    from leadsync.runtime import Runtime
    from leadsync.sandbox import Sandbox


def with_routing_cases(sb: Sandbox, runtime: Runtime) -> Runtime:
    """`--routing`: the sandbox's routing cases added, the runtime's model routing."""
    from leadsync.sandbox.seed_routing import add_routing_cases

    add_routing_cases(sb)
    return replace(runtime, model=with_example_routing(runtime.model))


def with_example_routing(model: ScoringModel) -> ScoringModel:
    """The model with the example routing rules, unless it has its own."""
    from leadsync.config.rules_parts import Where
    from leadsync.config.rules_routing import parse_routing
    from leadsync.sandbox.seed_routing import EXAMPLE_ROUTING

    if model.routing.enabled:
        return model
    return replace(model, routing=parse_routing(EXAMPLE_ROUTING, Where("demo --routing")))


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
