"""The `leadsync` command as an admin uses it, against the sandbox over real sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from leadsync.cli import cli
from leadsync.commands.common import environ
from leadsync.sandbox import Sandbox


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def unprovisioned() -> Iterator[Sandbox]:
    with Sandbox(contacts=60, seed=5, provision_hubspot=False) as sb, \
            environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        yield sb


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(contacts=120, seed=8) as sb, environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        yield sb


def test_check_fails_until_provisioned_then_passes(unprovisioned: Sandbox, tmp_path: Path
                                                   ) -> None:
    code, out = invoke("check")
    assert code == 1
    assert "leadsync_score" in out
    code, out = invoke("provision", "--out", str(tmp_path / "meta"))
    assert code == 0, out
    fields = list((tmp_path / "meta").rglob("LeadSync_Score__c.field-meta.xml"))
    assert len(fields) == 2  # Lead and Contact
    code, out = invoke("check")
    assert code == 0, out


def test_demo_json_has_the_documented_keys_and_no_duplicate_tasks() -> None:
    code, out = invoke("demo", "--contacts", "150", "--days", "1", "--step-hours", "12",
                       "--json")
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["ok"], summary["exit_code"], summary["stopped_reason"]) == (True, 0, None)
    assert summary["failed"] == {} and summary["errors"] == []
    for key in ("people", "stages", "stage_changes", "records_written", "tasks_created", "sla",
                "api_calls"):
        assert key in summary
    assert summary["people"] > 100
    assert summary["stage_changes"] > 0
    assert set(summary["records_written"]) == {"hubspot", "salesforce"}
    assert sum(summary["tasks_created"].values()) > 0
    assert summary["api_calls"]["hubspot"] > 0 and summary["api_calls"]["salesforce"] > 0
    assert sum(summary["duplicate_task_keys"].values()) == 0


def test_dry_run_reports_but_writes_nothing(sandbox: Sandbox) -> None:
    code, out = invoke("sync", "--once", "--dry-run", "--json")
    assert code == 0
    report = json.loads(out.strip().splitlines()[-1])
    assert report["dry_run"] is True and sum(report["records_written"].values()) > 0
    stats = sandbox.stats()
    assert stats["hubspot"]["records_written"] == 0
    assert stats["salesforce"]["records_written"] == 0
    assert stats["hubspot"]["tasks_created"] == stats["salesforce"]["tasks_created"] == 0


def test_explain_shows_breakdown_stage_and_sla(sandbox: Sandbox) -> None:
    with sandbox.data.lock:
        email = next(c["email"] for c in sandbox.data.hs_contacts.values() if c.get("email"))
    code, out = invoke("explain", email)
    assert code == 0, out
    assert "Score" in out and "Stage:" in out and "SLA:" in out
    code, out = invoke("explain", "nobody@nowhere.example")
    assert code == 1 and "No record" in out


def test_explain_agrees_with_what_a_cycle_wrote(sandbox: Sandbox) -> None:
    code, out = invoke("sync", "--once")
    assert code == 0, out
    with sandbox.data.lock:
        scored = [(int(c["leadsync_score"]), c["email"]) for c in sandbox.data.hs_contacts.values()
                  if c.get("email") and c.get("leadsync_score") not in (None, "")]
    emails = [e for _, e in scored]
    unique = [(s, e) for s, e in sorted(scored, reverse=True) if emails.count(e) == 1]
    assert unique[0][0] > 0
    for score, email in unique[:3]:
        code, out = invoke("explain", email)
        assert code == 0, out
        assert f"Score {score} = fit" in " ".join(out.split()), (score, out)


def test_bad_setting_names_the_variable_and_never_echoes_secrets() -> None:
    env = {"LEADSYNC_HUBSPOT__RATE_LIMIT_PER_10S": "lots",
           "LEADSYNC_SALESFORCE__PASSWORD": "hunter2-secret",
           "LEADSYNC_HUBSPOT__ACCESS_TOKEN": "pat-na1-0000-secret"}
    with environ(env):
        result = CliRunner().invoke(cli, ["sync", "--once"])
    assert result.exit_code == 2
    assert "LEADSYNC_HUBSPOT__RATE_LIMIT_PER_10S" in result.output
    assert "hunter2-secret" not in result.output and "pat-na1" not in result.output


def test_sync_output_and_logs_carry_no_secret_or_email(sandbox: Sandbox) -> None:
    with environ({"LEADSYNC_LOG_LEVEL": "DEBUG"}):
        result = CliRunner().invoke(cli, ["sync", "--once"], catch_exceptions=False)
    assert result.exit_code == 0
    text = result.output
    assert sandbox.hubspot_token not in text
    assert sandbox.env["LEADSYNC_SALESFORCE__PASSWORD"] not in text
    with sandbox.data.lock:
        emails = [c["email"] for c in sandbox.data.hs_contacts.values() if c.get("email")]
    assert not [e for e in emails if e in text]
