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


def test_a_failed_demo_names_what_failed_on_stderr(
        tmp_path: Any, monkeypatch: Any) -> None:
    """Rules routing to owners no CRM has: the seeded inactive-owner lead's task is refused
    (no fallback owner), the demo exits 1, and without --json stderr says what failed (it
    said nothing before, only the exit code told)."""
    rules = tmp_path / "ghost.yaml"
    rules.write_text(
        "version: ghost\nthresholds: {mql: 20}\n"
        "fit: [{id: jp, points: 25, when: {field: country, eq: JP}}]\n"
        "routing:\n  rules:\n"
        "    - {id: all-jp, when: {field: country, eq: JP}, owner: ghost@nowhere.example}\n",
        encoding="utf-8")
    monkeypatch.setenv("LEADSYNC_RULES_FILE", str(rules))
    monkeypatch.delenv("LEADSYNC_SLA__FALLBACK_OWNER", raising=False)
    args = ["demo", "--contacts", "30", "--days", "1", "--routing",
            "--review-html", str(tmp_path / "r.html")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("leadsync: ")]
    assert lines == [
        "leadsync: 1 record(s) or task(s) failed",
        "leadsync: INACTIVE_OWNER_OR_USER: operation performed with inactive user "
        "[0055g0000000010AAA] as owner of task; the task owner was refused and no fallback "
        "owner is configured (set LEADSYNC_SLA__FALLBACK_OWNER; the task is retried by the next "
        "cycle)"]
