"""Bad inputs through the real `leadsync` command (a subprocess with a clean environment).

Each row: the arguments, the environment, the exact exit code (leadsync.exitcodes), a fragment
of the one message that names the thing at fault — and never a Python traceback. No row waits
on the network: unreachable hosts are a closed local port with one attempt, or a `.invalid`
host name (refused at name resolution, never retried).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

from leadsync import exitcodes

ROOT = Path(__file__).resolve().parents[2]
CONFIG, UNREACHABLE = exitcodes.CONFIG, exitcodes.UNREACHABLE
HS = {"LEADSYNC_HUBSPOT__ACCESS_TOKEN": "pat-na1-not-a-real-token"}
SF_SESSION = {"LEADSYNC_SALESFORCE__INSTANCE_URL": "https://127.0.0.1:1",
              "LEADSYNC_SALESFORCE__SESSION_ID": "00Dxx0000001gPL!notreal"}
BAD_JSON = {"LEADSYNC_SALESFORCE__STATUS_MAP": "{bad json"}
NOT_FOUND = "/nonexistent/leadsync-rules.yaml"


#: Broken rules files for the sections added with routing, accounts and business hours: each
#: is `version` plus one broken section, written by the `files` fixture.
POOL = "  pools: {kanto: {members: [a@corp.example], capacity: 5}}\n"
KANTO = "    - {id: kanto, when: {field: state, eq: 東京都}, pool: kanto}\n"
RULES_FILES: dict[str, str] = {
    "toplist.yaml": "- version: '1'\n- fit: []\n",
    "routing_list.yaml": "version: '1'\nrouting: [kanto]\n",
    "capacity_negative.yaml": ("version: '1'\nrouting:\n  pools: {kanto: {members: "
                               "[a@corp.example], capacity: -1}}\n  rules:\n" + KANTO),
    "weight_zero.yaml": ("version: '1'\nrouting:\n  pools: {kanto: {members: "
                         "[{email: a@corp.example, weight: 0}]}}\n  rules:\n" + KANTO),
    "pool_empty.yaml": "version: '1'\nrouting:\n  pools: {kanto: {members: []}}\n  rules:\n"
                       + KANTO,
    "routing_dup.yaml": "version: '1'\nrouting:\n" + POOL + "  rules:\n" + KANTO + KANTO,
    "pool_typo.yaml": ("version: '1'\nrouting:\n" + POOL + "  rules:\n" + KANTO
                       + "    - {id: osaka, when: {field: state, eq: 大阪府}, pool: kantoo}\n"),
    "attributes_state.yaml": ("version: '1'\nrouting:\n" + POOL + "  rules:\n"
                              "    - {id: kanto, when: {field: attributes.state, eq: 東京都}, "
                              "pool: kanto}\n"),
    "bad_zone.yaml": "version: '1'\nsla: {business_hours: {timezone: Mars/Base}}\n",
    "hours_18_9.yaml": ("version: '1'\nsla: {business_hours: {timezone: Asia/Tokyo, "
                        "hours: ['18:00-09:00']}}\n"),
    "holiday_xx.yaml": ("version: '1'\nsla: {business_hours: {timezone: Asia/Tokyo, "
                        "holidays: XX}}\n"),
    "sla_century.yaml": ("version: '1'\nsla:\n  mql_hours: 100000\n  business_hours: "
                         "{timezone: Asia/Tokyo, days: [sun], hours: ['00:00-00:01']}\n"),
    "accounts_list.yaml": "version: '1'\naccounts: [mqa]\n",
    "inherit_when.yaml": ("version: '1'\naccounts:\n  mqa: 60\n  rules: [{id: a1, points: 10, "
                          "engaged_people: {min: 2}}]\n  inherit: {points: 10, when: always}\n"),
    "inherit_zero.yaml": ("version: '1'\naccounts:\n  mqa: 60\n  rules: [{id: a1, points: 10, "
                          "engaged_people: {min: 2}}]\n  inherit: {points: 0}\n"),
    "accounts_dup.yaml": ("version: '1'\nfit: [{id: a1, points: 5, when: {field: country, "
                          "eq: JP}}]\naccounts:\n  mqa: 60\n  rules: [{id: a1, points: 10, "
                          "engaged_people: {min: 2}}]\n"),
    "weight_quoted.yaml": ("version: '1'\nrouting:\n  pools: {kanto: {members: "
                           "[{email: a@corp.example, weight: '2'}]}}\n  rules:\n" + KANTO),
}


class Row(NamedTuple):
    name: str
    args: tuple[str, ...]
    env: dict[str, str]
    code: int
    fragment: str


def row(name: str, args: str | tuple[str, ...], code: int, fragment: str, **env: str) -> Row:
    argv = tuple(args.split()) if isinstance(args, str) else args
    return Row(name, argv, {f"LEADSYNC_{k}": v for k, v in env.items()}, code, fragment)


ROWS: list[Row] = [
    # -- settings: one message naming the variable, what is wrong, what is expected ----------
    row("status map bad json: check", "check", CONFIG,
        "LEADSYNC_SALESFORCE__STATUS_MAP: not valid JSON", SALESFORCE__STATUS_MAP="{bad json"),
    row("status map bad json: sync --json", "sync --once --json", CONFIG,
        "LEADSYNC_SALESFORCE__STATUS_MAP: not valid JSON", SALESFORCE__STATUS_MAP="{bad json"),
    row("status map bad json: explain", "explain taro@corp.example", CONFIG,
        "LEADSYNC_SALESFORCE__STATUS_MAP", SALESFORCE__STATUS_MAP="{bad json"),
    row("status map bad json: demo", "demo --json", CONFIG,
        "LEADSYNC_SALESFORCE__STATUS_MAP", SALESFORCE__STATUS_MAP="{bad json"),
    row("status map bad json: provision", "provision", CONFIG,
        "LEADSYNC_SALESFORCE__STATUS_MAP", SALESFORCE__STATUS_MAP="{bad json"),
    row("status map bad json: worker", "worker", CONFIG,
        "LEADSYNC_SALESFORCE__STATUS_MAP", SALESFORCE__STATUS_MAP="{bad json"),
    row("worker asked for the embedded beat", "worker --concurrency=1 -B", CONFIG,
        "-B: `leadsync worker` runs beat itself, as a supervised process",
        REDIS_URL="redis://127.0.0.1:1/0"),
    # `leadsync health` is a container healthcheck: exit 1 for anything unhealthy (Docker
    # reserves 2), one line naming it
    row("status map bad json: health", "health", exitcodes.FAILED_RECORDS,
        "unhealthy: settings: invalid settings: LEADSYNC_SALESFORCE__STATUS_MAP: not valid JSON",
        SALESFORCE__STATUS_MAP="{bad json", REDIS_URL="redis://127.0.0.1:1/0"),
    row("health without redis url", "health", exitcodes.FAILED_RECORDS,
        "unhealthy: settings: LEADSYNC_REDIS_URL is not set"),
    row("health with redis unreachable", "health --only beat", exitcodes.FAILED_RECORDS,
        "unhealthy: redis unreachable (ConnectionError)", REDIS_URL="redis://127.0.0.1:1/0"),
    row("health with redis unreachable: json", "health --only beat --json",
        exitcodes.FAILED_RECORDS, "redis: unreachable (ConnectionError)",
        REDIS_URL="redis://127.0.0.1:1/0"),
    row("health without redis url: json", "health --json", exitcodes.FAILED_RECORDS,
        "unhealthy: settings: LEADSYNC_REDIS_URL is not set"),
    row("status map target typo", "check", CONFIG, "did you mean 'disqualified'",
        SALESFORCE__STATUS_MAP='{"Lost": "disqualifed"}'),
    row("status map not an object", "check", CONFIG, "expected a JSON object",
        SALESFORCE__STATUS_MAP='["Working"]'),
    row("status map target not text", "check", CONFIG, "must be text",
        SALESFORCE__STATUS_MAP='{"Working": 5}'),
    row("fields bad json", "check", CONFIG, "LEADSYNC_SALESFORCE__FIELDS: not valid JSON",
        SALESFORCE__FIELDS="{oops"),
    row("lock, time limit and visibility disagree", "check", CONFIG,
        "LEADSYNC_JOB_LOCK_SECONDS (5000) must be less than", JOB_LOCK_SECONDS="5000",
        TASK_TIME_LIMIT_SECONDS="100", BROKER_VISIBILITY_TIMEOUT_SECONDS="50"),
    row("lock not below the visibility timeout", "sync --once", CONFIG,
        "LEADSYNC_JOB_LOCK_SECONDS (300) must be less than", JOB_LOCK_SECONDS="300"),
    row("fallback owner not an email", "check", CONFIG,
        "LEADSYNC_SLA__FALLBACK_OWNER: not an email address", SLA__FALLBACK_OWNER="not-an-email"),
    row("escalation owner not an email", "check", CONFIG,
        "LEADSYNC_SLA__ESCALATION_OWNER: not an email address", SLA__ESCALATION_OWNER="boss@"),
    row("salesforce domain bogus", "check", CONFIG,
        "LEADSYNC_SALESFORCE__DOMAIN: 'bogus-domain' is not a Salesforce login domain",
        SALESFORCE__DOMAIN="bogus-domain"),
    row("salesforce domain with .salesforce.com", "check", CONFIG, "drop '.salesforce.com'",
        SALESFORCE__DOMAIN="acme.my.salesforce.com"),
    row("hubspot base url not a url", "sync --once", CONFIG,
        "LEADSYNC_HUBSPOT__BASE_URL: 'not a url' is not an http(s) URL",
        HUBSPOT__BASE_URL="not a url"),
    row("hubspot base url ftp", "check", CONFIG, "LEADSYNC_HUBSPOT__BASE_URL",
        HUBSPOT__BASE_URL="ftp://api.hubapi.com"),
    row("salesforce login url without scheme", "check", CONFIG,
        "LEADSYNC_SALESFORCE__LOGIN_URL", SALESFORCE__LOGIN_URL="login.salesforce.com"),
    row("salesforce instance url without host", "check", CONFIG,
        "LEADSYNC_SALESFORCE__INSTANCE_URL", SALESFORCE__INSTANCE_URL="https://"),
    row("redis url http", "check", CONFIG, "LEADSYNC_REDIS_URL: scheme 'http'",
        REDIS_URL="http://127.0.0.1:6379/0"),
    row("redis url bad port", "check", CONFIG, "LEADSYNC_REDIS_URL: not a valid URL (bad port?)",
        REDIS_URL="redis://:hunter2@127.0.0.1:port/0"),
    row("redis url bad db", "check", CONFIG, "LEADSYNC_REDIS_URL: database 'abc'",
        REDIS_URL="redis://127.0.0.1:6379/abc"),
    row("ca bundle missing", "check", CONFIG,
        "LEADSYNC_SALESFORCE__CA_BUNDLE: /nonexistent: no such file",
        SALESFORCE__CA_BUNDLE="/nonexistent"),
    row("ca bundle not PEM", "sync --once", CONFIG,
        "has no '-----BEGIN CERTIFICATE-----' block", SALESFORCE__CA_BUNDLE="{tmp}/notes.txt"),
    row("private key missing", "check", CONFIG,
        "LEADSYNC_SALESFORCE__PRIVATE_KEY_FILE: /nonexistent/key.pem: no such file",
        SALESFORCE__PRIVATE_KEY_FILE="/nonexistent/key.pem", SALESFORCE__USERNAME="u@corp.example",
        SALESFORCE__CONSUMER_KEY="3MVG9"),
    row("salesforce password without username", "sync --once", CONFIG,
        "LEADSYNC_SALESFORCE__PASSWORD set, but no complete Salesforce login",
        SALESFORCE__PASSWORD="hunter2"),
    row("single underscore typo", "sync --once --json", CONFIG,
        "LEADSYNC_HUBSPOT_ACCESS_TOKEN is not a setting; did you mean "
        "LEADSYNC_HUBSPOT__ACCESS_TOKEN?", HUBSPOT_ACCESS_TOKEN="pat-na1-not-a-real-token"),
    row("explain with no CRM", "explain taro@corp.example", CONFIG, "no CRM is configured"),
    row("log level unknown", "check", CONFIG,
        "LEADSYNC_LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR", LOG_LEVEL="verbose"),
    row("rate limit not a number", "check", CONFIG,
        "LEADSYNC_HUBSPOT__RATE_LIMIT_PER_10S: expected a whole number",
        HUBSPOT__RATE_LIMIT_PER_10S="lots"),
    row("rate share above 1", "check", CONFIG,
        "LEADSYNC_HUBSPOT__RATE_LIMIT_SHARE: expected a number at most 1",
        HUBSPOT__RATE_LIMIT_SHARE="2"),
    row("sync interval too short", "check", CONFIG,
        "LEADSYNC_SYNC_INTERVAL_SECONDS: expected a number at least 10",
        SYNC_INTERVAL_SECONDS="1"),
    row("reevaluation hour 25", "check", CONFIG,
        "LEADSYNC_FULL_REEVALUATION_HOUR_UTC: expected a number at most 23",
        FULL_REEVALUATION_HOUR_UTC="25"),
    row("http attempts 0", "check", CONFIG,
        "LEADSYNC_HTTP_MAX_ATTEMPTS: expected a number at least 1", HTTP_MAX_ATTEMPTS="0"),
    # -- the rules file ------------------------------------------------------------------------
    row("rules file missing: sync", "sync --once", CONFIG,
        f"LEADSYNC_RULES_FILE: {NOT_FOUND}: no such file", RULES_FILE=NOT_FOUND),
    row("rules file missing: demo", "demo", CONFIG, "LEADSYNC_RULES_FILE", RULES_FILE=NOT_FOUND),
    row("rules file missing: explain", "explain taro@corp.example", CONFIG,
        "LEADSYNC_RULES_FILE", RULES_FILE=NOT_FOUND),
    row("rules file is a directory", "check", CONFIG, "not a regular file", RULES_FILE="{tmp}"),
    row("rules file broken YAML: sync", "sync --once --json", CONFIG, "broken.yaml: yaml:",
        RULES_FILE="{tmp}/broken.yaml"),
    row("rules file broken YAML: demo", "demo", CONFIG, "broken.yaml: yaml:",
        RULES_FILE="{tmp}/broken.yaml"),
    row("rules file unknown key: explain", "explain taro@corp.example", CONFIG,
        "unknown.yaml: bogus: unknown key", RULES_FILE="{tmp}/unknown.yaml"),
    row("rules file unknown key: check", "check --json", CONFIG,
        "unknown.yaml: bogus: unknown key", RULES_FILE="{tmp}/unknown.yaml"),
    # -- the rules file's routing, accounts and business-hours sections -----------------------
    row("rules file is a YAML list", "check --json", CONFIG,
        "toplist.yaml: file: expected a mapping at the top level", RULES_FILE="{tmp}/toplist.yaml"),
    row("routing is a list", "check --json", CONFIG, "routing_list.yaml: routing: expected a "
        "mapping", RULES_FILE="{tmp}/routing_list.yaml"),
    row("pool capacity negative", "demo --json", CONFIG,
        "routing.pools.kanto.capacity: must be >= 1, got -1",
        RULES_FILE="{tmp}/capacity_negative.yaml"),
    row("pool weight 0", "score --rules {tmp}/weight_zero.yaml --input {tmp}/people.jsonl",
        CONFIG, "routing.pools.kanto.members[0].weight: must be >= 1, got 0"),
    row("pool weight quoted", "check --json", CONFIG,
        "routing.pools.kanto.members[0].weight: expected a number, got the text '2': "
        "write it without quotes", RULES_FILE="{tmp}/weight_quoted.yaml"),
    row("pool empty", "check", CONFIG, "routing.pools.kanto.members: required: a non-empty list",
        RULES_FILE="{tmp}/pool_empty.yaml"),
    row("routing rule id twice", "explain taro@corp.example", CONFIG,
        "routing_dup.yaml: rule 'kanto': id: duplicate routing rule id",
        RULES_FILE="{tmp}/routing_dup.yaml"),
    row("routing pool typo", "demo", CONFIG,
        "rule 'osaka': pool: 'kantoo' is not one of routing.pools (kanto)",
        RULES_FILE="{tmp}/pool_typo.yaml"),
    row("routing field attributes.state", "check --json", CONFIG,
        "rule 'kanto': when.field: 'attributes.state': attributes are read by their bare name "
        "(field: state)", RULES_FILE="{tmp}/attributes_state.yaml"),
    row("business hours bad time zone", "demo --business-hours --json", CONFIG,
        "sla.business_hours.timezone: 'Mars/Base': not a known IANA time zone name",
        RULES_FILE="{tmp}/bad_zone.yaml"),
    row("business hours 18-9", "score --rules {tmp}/hours_18_9.yaml --input {tmp}/people.jsonl",
        CONFIG, "sla.business_hours.hours[0]: '18:00-09:00' ends before it starts"),
    row("business hours unknown holiday country", "check --json", CONFIG,
        "sla.business_hours.holidays: 'XX' is not a country the holidays package knows",
        RULES_FILE="{tmp}/holiday_xx.yaml"),
    row("business-hours SLA past a century",
        "score --rules {tmp}/sla_century.yaml --input {tmp}/people.jsonl", CONFIG,
        "sla.mql_hours: 100000 working hours take about 114,990 years"),
    row("accounts is a list", "demo --routing", CONFIG, "accounts: expected a mapping",
        RULES_FILE="{tmp}/accounts_list.yaml"),
    row("inherit bad when", "explain --account corp.example", CONFIG,
        "inherit_when.yaml: accounts.inherit.when: expected mqa",
        RULES_FILE="{tmp}/inherit_when.yaml"),
    row("inherit 0 points", "check", CONFIG, "accounts.inherit.points: must not be 0",
        RULES_FILE="{tmp}/inherit_zero.yaml"),
    row("account rule id also a fit rule id",
        "score --rules {tmp}/accounts_dup.yaml --input {tmp}/people.jsonl", CONFIG,
        "accounts_dup.yaml: rule 'a1': id: duplicate rule id"),
    # -- explain --account's argument, before any call ------------------------------------------
    row("explain account empty", ("explain", "--account", " "), CONFIG,
        "--account: empty; expected a domain"),
    row("explain account and email", "explain a@corp.example --account corp.example", CONFIG,
        "explain takes either EMAIL or --account"),
    row("explain account no CRM", "explain --account corp.example", CONFIG,
        "no CRM is configured"),
    # -- CRMs and Redis that cannot be reached (no waits) -------------------------------------
    row("no CRM configured", "sync --once --json", CONFIG, "no CRM is configured"),
    row("redis unreachable", "sync --once --json", UNREACHABLE,
        "LEADSYNC_REDIS_URL: Redis at redis://127.0.0.1:1/7 is unreachable",
        REDIS_URL="redis://127.0.0.1:1/7", **{k[9:]: v for k, v in HS.items()}),
    row("hubspot host does not resolve", "sync --once --json", UNREACHABLE,
        "HubSpot at no-such-host.invalid: the host name does not resolve",
        HUBSPOT__BASE_URL="http://no-such-host.invalid",
        **{k[9:]: v for k, v in HS.items()}),
    row("hubspot port closed", "sync --once --json", UNREACHABLE,
        "HubSpot owners: gave up after 1 attempts (127.0.0.1:1: connection failed",
        HUBSPOT__BASE_URL="http://127.0.0.1:1", HTTP_MAX_ATTEMPTS="1",
        **{k[9:]: v for k, v in HS.items()}),
    row("hubspot port closed: check", "check --json", UNREACHABLE, "127.0.0.1:1",
        HUBSPOT__BASE_URL="http://127.0.0.1:1", HTTP_MAX_ATTEMPTS="1",
        **{k[9:]: v for k, v in HS.items()}),
    row("explain account: hubspot port closed", "explain --account corp.example", UNREACHABLE,
        "HubSpot companies list: gave up after 1 attempts (127.0.0.1:1: connection failed",
        HUBSPOT__BASE_URL="http://127.0.0.1:1", HTTP_MAX_ATTEMPTS="1",
        **{k[9:]: v for k, v in HS.items()}),
    row("explain account: redis unreachable", "explain --account corp.example", UNREACHABLE,
        "LEADSYNC_REDIS_URL: Redis at redis://127.0.0.1:1/0 is unreachable",
        REDIS_URL="redis://127.0.0.1:1/0", **{k[9:]: v for k, v in HS.items()}),
    # -- explain's argument: checked before any call, never echoed whole ---------------------
    row("explain not an email", "explain not-an-email", CONFIG,
        "EMAIL: 'not-an-email' is not an email address"),
    row("explain 5000 characters", ("explain", "x" * 5000), CONFIG,
        "EMAIL: 5,000 characters is not an email address"),
    row("explain no domain dot", "explain a@b", CONFIG, "EMAIL: 'a@b' is not an email address"),
    row("explain two at signs", "explain two@@corp.example", CONFIG,
        "is not an email address"),
    # -- provision ------------------------------------------------------------------------------
    row("provision out not writable", "provision --out /proc/nope", CONFIG,
        "--out /proc/nope: cannot write there",
        **{k[9:]: v for k, v in SF_SESSION.items()}),
    row("provision out not writable: json", "provision --out /proc/nope --json", CONFIG,
        "--out /proc/nope", **{k[9:]: v for k, v in SF_SESSION.items()}),
    row("provision with no CRM", "provision", CONFIG, "no CRM is configured"),
    # -- score ------------------------------------------------------------------------------------
    row("score output dir missing", "score --input {tmp}/people.jsonl -o /nonexistent/dir/x",
        CONFIG, "/nonexistent/dir/x: No such file or directory"),
    row("score input missing", "score --input /nonexistent/people.jsonl", CONFIG,
        "--input: cannot read /nonexistent/people.jsonl"),
    row("score rules missing", "score --rules /nonexistent/r.yaml --input {tmp}/people.jsonl",
        CONFIG, "/nonexistent/r.yaml"),
    row("score now not a time", "score --now yesterday --input {tmp}/people.jsonl", CONFIG,
        "--now"),
    # -- sandbox serve ------------------------------------------------------------------------
    row("sandbox port busy", "sandbox serve --port {busy}", CONFIG,
        "--port {busy}: cannot listen on 127.0.0.1:{busy} (already in use"),
    row("sandbox sf port busy", "sandbox serve --port 0 --sf-port {busy}", CONFIG,
        "--sf-port {busy}: cannot listen"),
    row("sandbox unknown fault", "sandbox serve --faults bogus=1", CONFIG, "unknown fault 'bogus'"),
    row("sandbox env file dir missing", "sandbox serve --env-file /nonexistent/dir/sandbox.env",
        CONFIG, "--env-file /nonexistent/dir/sandbox.env: directory /nonexistent/dir"),
    row("sandbox now not a time", "sandbox serve --now tomorrow", CONFIG, "ISO-8601"),
    # -- arguments ------------------------------------------------------------------------------
    row("demo contacts out of range", "demo --contacts 5", CONFIG, "--contacts"),
    row("demo contacts 0: json", "demo --contacts 0 --json", CONFIG,
        "Invalid value for '--contacts': 0 is not in the range 10<=x<=200000"),
    row("demo days -1", "demo --days -1", CONFIG,
        "Invalid value for '--days': -1 is not in the range 1<=x<=60"),
    row("demo step hours nan", "demo --step-hours nan", CONFIG,
        "Invalid value for '--step-hours': 'nan' is not a finite number"),
    row("demo step hours nan: json", "demo --routing --step-hours nan --json", CONFIG,
        "Invalid value for '--step-hours': 'nan' is not a finite number"),
    row("review capacity nan", "review --capacity nan", CONFIG,
        "Invalid value for '--capacity': 'nan' is not a finite number"),
    row("sync unknown option: json", "sync --frobnicate --json", CONFIG,
        "No such option '--frobnicate'"),
    row("demo review html dir missing",
        "demo --contacts 10 --days 1 --review-html /nonexistent/dir/r.html --json", CONFIG,
        "--review-html: cannot write /nonexistent/dir/r.html: directory /nonexistent/dir does "
        "not exist"),
    row("sync unknown option", "sync --frobnicate", CONFIG, "No such option '--frobnicate'"),
    row("unknown command", "frobnicate", CONFIG, "No such command 'frobnicate'"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("bad-inputs")
    (tmp / "notes.txt").write_text("not a certificate\n", encoding="utf-8")
    (tmp / "broken.yaml").write_text("version: '1'\nfit: [1, 2\n", encoding="utf-8")
    (tmp / "unknown.yaml").write_text("version: '1'\nbogus: 1\n", encoding="utf-8")
    (tmp / "people.jsonl").write_text('{"id": "p1"}\n', encoding="utf-8")
    for name, text in RULES_FILES.items():
        (tmp / name).write_text(text, encoding="utf-8")
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        yield {"tmp": str(tmp), "busy": str(busy.getsockname()[1])}
    finally:
        busy.close()


def clean_env(extra: dict[str, str], home: str) -> dict[str, str]:
    """Only what Python needs, plus the row's LEADSYNC_* settings: nothing from the caller."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8",
           "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    env.update(extra)
    return env


def fill(text: str, files: dict[str, str]) -> str:
    """`{tmp}` and `{busy}` filled in (JSON braces left alone)."""
    for key, value in files.items():
        text = text.replace("{" + key + "}", value)
    return text


def run(r: Row, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = [fill(a, files) for a in r.args]
    env = clean_env({k: fill(v, files) for k, v in r.env.items()}, files["tmp"])
    return subprocess.run([sys.executable, "-m", "leadsync", *args], env=env, cwd=files["tmp"],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def results(files: dict[str, str]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every row run once, a few at a time (each is a fresh interpreter)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip((r.name for r in ROWS), pool.map(lambda r: run(r, files), ROWS),
                        strict=True))
    return done


def test_the_table_is_large_and_names_are_unique() -> None:
    assert len(ROWS) >= 40
    assert len({r.name for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("r", ROWS, ids=[r.name for r in ROWS])
def test_bad_input(r: Row, results: dict[str, subprocess.CompletedProcess[str]],
                   files: dict[str, str]) -> None:
    proc = results[r.name]
    output = proc.stdout + proc.stderr
    fragment = fill(r.fragment, files)
    assert "Traceback" not in output, output
    assert proc.returncode == r.code, output
    assert fragment in " ".join(output.split()), output
    if "--json" in r.args:
        outcome = json.loads(proc.stdout.strip().splitlines()[-1])
        assert outcome["ok"] is False and outcome["exit_code"] == r.code
        assert any(fragment in e for e in outcome["errors"]), outcome
        assert set(outcome) >= {"ok", "exit_code", "stopped_reason", "failed", "errors"}


def test_explain_never_echoes_a_long_argument(
        results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    proc = results["explain 5000 characters"]
    assert "x" * 60 not in proc.stdout + proc.stderr
    assert len(proc.stdout + proc.stderr) < 400


def test_secrets_in_bad_settings_are_never_echoed(
        results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    for name in ("redis url bad port", "redis unreachable", "hubspot port closed",
                 "salesforce password without username", "single underscore typo"):
        proc = results[name]
        assert "hunter2" not in proc.stdout + proc.stderr
        assert "pat-na1-not-a-real-token" not in proc.stdout + proc.stderr

