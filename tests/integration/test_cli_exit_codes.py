"""Each exit code of leadsync.exitcodes through the real `leadsync` command (a subprocess)
against a faulted sandbox; `--json` prints its outcome object in every case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadsync import exitcodes
from leadsync.sandbox import Sandbox
from leadsync.sandbox.faults import Faults

ROOT = Path(__file__).resolve().parents[2]


def leadsync(sb: Sandbox, *args: str, **settings: str) -> tuple[int, dict[str, Any], str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(ROOT),
           "PYTHONPATH": str(ROOT), **sb.env,
           **{f"LEADSYNC_{k}": v for k, v in settings.items()}}
    proc = subprocess.run([sys.executable, "-m", "leadsync", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr  # --json always prints its object
    return proc.returncode, json.loads(lines[-1]), proc.stderr


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(contacts=60, seed=3) as sb:
        yield sb


def hubspot_people(sb: Sandbox) -> int:
    with sb.data.lock:
        return len(sb.data.hs_contacts)


def hubspot_companies(sb: Sandbox) -> int:
    with sb.data.lock:
        return len(sb.data.hs_companies)


def test_exit_0_when_the_cycle_is_clean(sandbox: Sandbox) -> None:
    code, out, _ = leadsync(sandbox, "sync", "--once", "--json")
    assert code == exitcodes.OK
    assert out["ok"] is True and out["exit_code"] == 0 and out["stopped_reason"] is None
    assert out["failed"] == {} and out["errors"] == []
    assert out["people"] == 60
    # the keys `leadsync demo --json` has for accounts and routing, here too
    assert out["routing"] == {"enabled": False, "rules": 0, "routed": 0, "by_rule": {},
                              "unrouted": 0}
    assert set(out["accounts"]) == {"evaluated", "mqa", "not_mqa"}
    assert len(out["top_accounts"]) == 5
    stats = sandbox.stats()
    # the sandbox counts people's and accounts' records (docs/accounts.md)
    assert {s: out["records_written"][s] + out["account_records_written"][s]
            for s in ("hubspot", "salesforce")} == {
        "hubspot": stats["hubspot"]["records_written"],
        "salesforce": stats["salesforce"]["records_written"]}
    code, out, _ = leadsync(sandbox, "sync", "--once", "--json")  # nothing left to write
    assert code == exitcodes.OK and out["records_written"] == {}
    assert out["account_records_written"] == {}


def test_exit_1_when_every_hubspot_write_is_rejected_before_provision() -> None:
    with Sandbox(contacts=60, seed=3, provision_hubspot=False) as sb:
        code, out, err = leadsync(sb, "sync", "--once", "--json")
        assert code == exitcodes.FAILED_RECORDS
        assert out["ok"] is False and out["exit_code"] == 1 and out["stopped_reason"] is None
        # the contacts' writes and the companies' (their properties are missing too)
        refused = hubspot_people(sb) + hubspot_companies(sb)
        assert out["failed"] == {"hubspot": refused}
        assert "hubspot" not in out["records_written"]
        assert out["records_written"]["salesforce"] + out["account_records_written"][
            "salesforce"] == sb.stats()["salesforce"]["records_written"]
        assert "PROPERTY_DOESNT_EXIST" in out["errors"][0]
        assert f"{refused} record(s) or task(s) failed" in err


def test_exit_1_from_check_when_fields_are_missing_then_0(tmp_path: Path) -> None:
    with Sandbox(contacts=20, seed=3, provision_hubspot=False) as sb:
        code, out, _ = leadsync(sb, "check", "--json")
        assert code == exitcodes.FAILED_RECORDS and out["ok"] is False
        assert any("leadsync_score" in e for e in out["errors"])
        code, out, _ = leadsync(sb, "provision", "--json", "--out", str(tmp_path / "meta"))
        assert code == exitcodes.OK and out["ok"] is True
        assert len(out["salesforce"]) == 28  # project, 11 fields x Lead + Contact, 5 Account
        code, out, _ = leadsync(sb, "check", "--json")
        assert code == exitcodes.OK and out["ok"] is True
        assert [c["what"] for c in out["checks"]] == ["settings", "rules file", "hubspot",
                                                      "salesforce"]


def test_exit_3_when_the_api_budget_is_spent() -> None:
    with Sandbox(contacts=60, seed=3, faults=Faults(daily_429=True)) as sb:
        code, out, err = leadsync(sb, "sync", "--once", "--json")
    assert code == exitcodes.STOPPED_EARLY
    assert out["ok"] is False and out["exit_code"] == 3 and out["stopped_reason"] == "budget"
    # HubSpot's daily cap stops HubSpot's work only: Salesforce's records are still written
    assert out["budget_stopped"] == ["hubspot"]
    assert out["records_written"] == {"salesforce": 42}
    assert out["errors"] == ["stopped early: budget"]
    assert "stopped early: budget" in err


def test_exit_4_when_the_token_is_refused(sandbox: Sandbox) -> None:
    code, out, err = leadsync(sandbox, "sync", "--once", "--json",
                              HUBSPOT__ACCESS_TOKEN="pat-na1-00000000-wrong")
    assert code == exitcodes.UNREACHABLE
    assert out == {"ok": False, "exit_code": 4, "outcome": exitcodes.MEANING[4],
                   "stopped_reason": "auth", "failed": {}, "errors": [
                       "authentication or permission refused: HubSpot owners: access token "
                       "rejected (401 INVALID_AUTHENTICATION)"]}
    assert "pat-na1-00000000-wrong" not in err
    code, out, _ = leadsync(sandbox, "check", "--json",
                            HUBSPOT__ACCESS_TOKEN="pat-na1-00000000-wrong")
    assert code == exitcodes.UNREACHABLE and out["ok"] is False


def test_exit_4_when_429s_outlast_the_retries() -> None:
    with Sandbox(contacts=20, seed=3, faults=Faults(burst_429=8)) as sb:
        code, out, _ = leadsync(sb, "sync", "--once", "--json", HTTP_MAX_ATTEMPTS="2")
    assert code == exitcodes.UNREACHABLE and out["stopped_reason"] == "unreachable"
    assert out["errors"] == ["HubSpot owners: gave up after 2 attempts (429 TEN_SECONDLY_ROLLING)"]


def test_exit_4_when_every_answer_is_slower_than_the_timeout() -> None:
    with Sandbox(contacts=20, seed=3, faults=Faults(latency_ms=2500)) as sb:
        code, out, _ = leadsync(sb, "sync", "--once", "--json", HTTP_MAX_ATTEMPTS="1",
                                HUBSPOT__TIMEOUT_SECONDS="1")
    assert code == exitcodes.UNREACHABLE and out["ok"] is False
    assert out["errors"][0].startswith("HubSpot owners: gave up after 1 attempts (127.0.0.1:")
    assert out["errors"][0].endswith("timed out)")


def test_dry_run_says_would_write_and_exits_0(sandbox: Sandbox) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "HOME": str(ROOT),
           **sandbox.env}
    proc = subprocess.run([sys.executable, "-m", "leadsync", "sync", "--once", "--dry-run"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == exitcodes.OK, proc.stderr
    assert "dry run: nothing was written" in proc.stdout
    assert "records that would be written" in proc.stdout
    assert "records written" not in proc.stdout
    assert sandbox.stats()["hubspot"]["records_written"] == 0


def test_check_still_checks_the_crms_when_redis_or_the_rules_file_fails(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """An unreachable Redis (exit 4) or a broken rules file (exit 2) is one row of its own; the
    CRMs, which need neither, are still checked (they were skipped), and the rules error is
    not repeated as a `connectors` row."""
    code, out, _ = leadsync(sandbox, "check", "--json", REDIS_URL="redis://127.0.0.1:1/0")
    assert code == exitcodes.UNREACHABLE
    assert [(c["what"], c["ok"]) for c in out["checks"]] == [
        ("settings", True), ("rules file", True), ("redis", False), ("hubspot", True),
        ("salesforce", True)]
    assert out["errors"] == ["redis: LEADSYNC_REDIS_URL: Redis at redis://127.0.0.1:1/0 is "
                             "unreachable or invalid (ConnectionError); expected "
                             "redis://[:password@]host:port/db"]
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: '1'\nrouting: [kanto]\n", encoding="utf-8")
    code, out, _ = leadsync(sandbox, "check", "--json", RULES_FILE=str(rules))
    assert code == exitcodes.CONFIG
    assert [(c["what"], c["ok"]) for c in out["checks"]] == [
        ("settings", True), ("rules file", False), ("hubspot", True), ("salesforce", True)]
    assert out["errors"] == [f"rules file: {rules}: routing: expected a mapping"]


def test_check_names_routing_targets_no_crm_has(tmp_path: Path) -> None:
    """Routing rules naming owners neither CRM has as an active owner: `check` exits 1 naming
    each by its place in the rules file (never its email); with real reps it is one OK row."""
    with Sandbox(contacts=0, seed=3) as sb:
        rep = next(iter(sb.data.hs_owners.values()))["email"]
        rules = tmp_path / "rules.yaml"
        rules.write_text(
            "version: '1'\nrouting:\n  pools:\n"
            f"    kanto: {{members: [{rep}, ghost1@nowhere.example]}}\n  rules:\n"
            "    - {id: tokyo, when: {field: state, eq: 東京都}, pool: kanto}\n"
            "    - {id: jp, when: {field: country, eq: JP}, owner: GHOST2@nowhere.example}\n"
            "    - {id: osaka, when: {field: state, eq: 大阪府}, pool: kanto}\n",
            encoding="utf-8")
        code, out, _ = leadsync(sb, "check", "--json", RULES_FILE=str(rules))
        assert code == exitcodes.FAILED_RECORDS
        assert out["errors"] == [
            "routing: 2 routing target(s) are no active owner in hubspot or salesforce: "
            "routing.pools.kanto.members[1], rule 'jp' owner; people routed to them get no owner"]
        assert "nowhere.example" not in json.dumps(out)
        rules.write_text(
            "version: '1'\nrouting:\n  rules:\n"
            f"    - {{id: jp, when: {{field: country, eq: JP}}, owner: {rep}}}\n",
            encoding="utf-8")
        code, out, _ = leadsync(sb, "check", "--json", RULES_FILE=str(rules))
        assert code == exitcodes.OK, out
        assert out["checks"][-1] == {"what": "routing", "ok": True, "detail": "1 routing "
                                     "target(s), each an active owner in hubspot or salesforce"}
