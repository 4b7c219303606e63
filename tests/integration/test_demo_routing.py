"""`leadsync demo --routing` shows routed MQLs: the sandbox's routing cases plus the seeded
people whose lead sits with the integration user, routed by the example rules; the person
outside every territory is reported (the demo configures no fallback owner). Without the flag
routing is off and says so."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from leadsync.cli import cli
from leadsync.commands.demo_routing import routing_line


def demo(*flags: str) -> tuple[dict[str, Any], str]:
    args = ["demo", "--contacts", "150", "--days", "1", "--step-hours", "12", *flags]
    as_json = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert as_json.exit_code == 0, as_json.output
    summary: dict[str, Any] = json.loads(as_json.output.strip().splitlines()[-1])
    return summary, CliRunner().invoke(cli, args, catch_exceptions=False).output


def test_demo_routes_mqls_and_shows_them() -> None:
    summary, text = demo("--routing")
    assert summary["ok"] is True
    assert summary["routing"] == {"enabled": True, "rules": 2, "routed": 13,
                                  "by_rule": {"japan": 10, "us": 3}, "unrouted": 1}
    assert routing_line(summary["routing"]) in " ".join(text.split())
    assert routing_line(summary["routing"]) == (
        "Routed MQLs/SQLs: 13 (japan 10, us 3); needing an owner and given none: 1")


def test_without_the_flag_routing_is_off() -> None:
    summary, text = demo()
    assert summary["routing"] == {"enabled": False, "rules": 0, "routed": 0, "by_rule": {},
                                  "unrouted": 0}
    assert "Routing: off (no routing section in the rules file" in text
