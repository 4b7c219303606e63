"""Settings are checked as a whole before any work; each message names the variable, what is
wrong and what is expected, in the project's words (never pydantic's)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadsync.config.settings import (
    DEFAULT_STATUS_MAP,
    LEAD_STATUS_TARGETS,
    SettingsError,
    load_settings,
    soft_time_limit,
    timing_problems,
)
from leadsync.connectors.salesforce.mapping import map_lead_status
from leadsync.scoring.profile import SALES_STATUSES


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("LEADSYNC_"):
            monkeypatch.delenv(name)
    yield


def refused(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for key, value in env.items():
        monkeypatch.setenv(f"LEADSYNC_{key}", value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    for pydantic_words in ("literal_error", "Value error", "type=", "pydantic", "input_value"):
        assert pydantic_words not in message
    return message


def test_defaults_load() -> None:
    settings = load_settings()
    assert settings.log_level == "INFO" and settings.redis_url is None
    assert settings.salesforce.status_map == DEFAULT_STATUS_MAP
    assert (settings.http_max_attempts, settings.http_max_retry_seconds) == (6, 180.0)


def test_status_map_targets_are_sales_statuses() -> None:
    assert set(LEAD_STATUS_TARGETS) <= SALES_STATUSES


def test_partial_status_map_is_merged_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSYNC_SALESFORCE__STATUS_MAP",
                       '{"Contacted": "working", "qualified": "working", "Nurture": ""}')
    table = load_settings().salesforce.status_map
    assert len(table) == len(DEFAULT_STATUS_MAP) + 1  # "qualified" replaced "Qualified"
    assert map_lead_status("Contacted", table) == ("working", True)
    assert map_lead_status("Qualified", table) == ("working", True)  # override, any case
    assert map_lead_status("Nurture", table) == (None, True)  # "" = no sales status
    assert map_lead_status("Unqualified", table) == ("disqualified", True)  # default kept


def test_status_map_target_typo_names_the_close_match(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused(monkeypatch, SALESFORCE__STATUS_MAP='{"Lost": "disqualifed"}')
    assert message == (
        "invalid settings:\n  LEADSYNC_SALESFORCE__STATUS_MAP: 'Lost' maps to 'disqualifed' "
        "(did you mean 'disqualified'?); expected one of working, accepted, rejected, "
        'disqualified or "" (no sales status)')


@pytest.mark.parametrize(("value", "fragment"), [
    ("{bad json", "not valid JSON (Expecting property name enclosed in double quotes: line 1"),
    ('["Working"]', "expected a JSON object of Lead Status -> target"),
    ('{"Working": 5}', "'Working': keys and targets must be text"),
    ('{"Working": "won"}', "'Working' maps to 'won'"),
])
def test_status_map_shapes(monkeypatch: pytest.MonkeyPatch, value: str, fragment: str) -> None:
    message = refused(monkeypatch, SALESFORCE__STATUS_MAP=value)
    assert message.startswith("invalid settings:\n  LEADSYNC_SALESFORCE__STATUS_MAP: ")
    assert fragment in message


def test_bad_json_in_another_nested_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused(monkeypatch, HUBSPOT__FIELDS="{oops")
    assert message.startswith("invalid settings:\n  LEADSYNC_HUBSPOT__FIELDS: not valid JSON")


def test_timing_is_checked_as_a_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused(monkeypatch, JOB_LOCK_SECONDS="5000", TASK_TIME_LIMIT_SECONDS="100",
                      BROKER_VISIBILITY_TIMEOUT_SECONDS="50")
    lines = message.split("; ")
    assert len(lines) == 1  # a time limit above the visibility timeout is fine (renewal)
    assert "LEADSYNC_JOB_LOCK_SECONDS (5000) must be less than " \
           "LEADSYNC_BROKER_VISIBILITY_TIMEOUT_SECONDS (50)" in lines[0]


def test_timing_rules() -> None:
    assert timing_problems(600, 3000, 3600) == []
    assert timing_problems(120, 3000, 300) == []  # the defaults: renewal covers long jobs
    assert len(timing_problems(300, 3000, 300)) == 1
    assert timing_problems(15, 50, 60) == []
    assert soft_time_limit(3000) == 2700 and soft_time_limit(50) == 45
    assert soft_time_limit(10) == 5
    assert len(timing_problems(600, 3000, 3000)) == 0  # the hard limit may exceed visibility
    assert len(timing_problems(3600, 3000, 3600)) == 1  # lock must end before redelivery


@pytest.mark.parametrize("name", ["SLA__FALLBACK_OWNER", "SLA__ESCALATION_OWNER"])
@pytest.mark.parametrize("value", ["not-an-email", "boss@", "@corp.example", "a b@corp.example",
                                   "boss@corp"])
def test_owners_must_be_emails(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    message = refused(monkeypatch, **{name: value})
    assert f"LEADSYNC_{name}: not an email address; expected the owner's email" in message


def test_owner_email_accepted_and_blank_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSYNC_SLA__FALLBACK_OWNER", " sales-ops@corp.example ")
    monkeypatch.setenv("LEADSYNC_SLA__ESCALATION_OWNER", "")
    sla = load_settings().sla
    assert (sla.fallback_owner, sla.escalation_owner) == ("sales-ops@corp.example", None)


@pytest.mark.parametrize("value", ["login", "test", "TEST", "acme.my", "acme--uat.sandbox.my",
                                   "acme.develop.my"])
def test_salesforce_domains_accepted(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("LEADSYNC_SALESFORCE__DOMAIN", value)
    assert load_settings().salesforce.domain == value


@pytest.mark.parametrize(("value", "hint"), [
    ("bogus-domain", ""), ("", ""), ("https://login.salesforce.com", ""),
    ("acme.my.salesforce.com", "(drop '.salesforce.com': 'acme.my')"),
])
def test_salesforce_domains_refused(monkeypatch: pytest.MonkeyPatch, value: str,
                                    hint: str) -> None:
    message = refused(monkeypatch, SALESFORCE__DOMAIN=value)
    assert "LEADSYNC_SALESFORCE__DOMAIN: " in message
    assert "expected 'login' (production), 'test' (sandboxes) or a My Domain" in message
    assert hint in message


@pytest.mark.parametrize(("name", "value"), [
    ("HUBSPOT__BASE_URL", "not a url"), ("HUBSPOT__BASE_URL", "ftp://api.hubapi.com"),
    ("HUBSPOT__BASE_URL", "https://"), ("HUBSPOT__BASE_URL", "https://h:99999"),
    ("SALESFORCE__LOGIN_URL", "login.salesforce.com"),
    ("SALESFORCE__INSTANCE_URL", "https://user:pw@acme.my.salesforce.com"),
])
def test_http_urls_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    message = refused(monkeypatch, **{name: value})
    assert f"LEADSYNC_{name}: " in message and "expected" in message
    assert "pw@" not in message


def test_http_urls_accepted_without_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSYNC_HUBSPOT__BASE_URL", "http://127.0.0.1:8080/")
    monkeypatch.setenv("LEADSYNC_SALESFORCE__LOGIN_URL", "https://test.salesforce.com")
    settings = load_settings()
    assert settings.hubspot.base_url == "http://127.0.0.1:8080"
    assert settings.salesforce.login_url == "https://test.salesforce.com"


@pytest.mark.parametrize(("value", "fragment"), [
    ("http://127.0.0.1:6379/0", "scheme 'http' is not redis, rediss or unix"),
    ("redis://:hunter2@127.0.0.1:port/0", "not a valid URL (bad port?)"),
    ("redis://127.0.0.1:6379/abc", "database 'abc' is not a number"),
    ("redis:///0", "no host"),
])
def test_redis_url_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch, value: str,
                                              fragment: str) -> None:
    message = refused(monkeypatch, REDIS_URL=value)
    assert f"LEADSYNC_REDIS_URL: {fragment}" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("value", ["redis://127.0.0.1:6379/9", "rediss://:pw@h.example:6380",
                                   "unix:///run/redis.sock"])
def test_redis_url_accepted(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("LEADSYNC_REDIS_URL", value)
    assert load_settings().redis_url == value


def test_blank_redis_url_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSYNC_REDIS_URL", "")
    monkeypatch.setenv("LEADSYNC_RULES_FILE", "")
    settings = load_settings()
    assert settings.redis_url is None and settings.rules_file is None


def test_files_are_checked_up_front(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n", encoding="utf-8")
    message = refused(monkeypatch, SALESFORCE__CA_BUNDLE="/nonexistent",
                      SALESFORCE__PRIVATE_KEY_FILE=str(notes), RULES_FILE=str(tmp_path))
    assert message.splitlines()[1:] == [
        f"  LEADSYNC_SALESFORCE__PRIVATE_KEY_FILE: {notes}: has no 'PRIVATE KEY-----' block; "
        "expected the PEM private key of the connected app's certificate",
        "  LEADSYNC_SALESFORCE__CA_BUNDLE: /nonexistent: no such file; expected a PEM file of "
        "CA certificates",
        f"  LEADSYNC_RULES_FILE: {tmp_path}: not a regular file; expected a rules file (YAML, "
        "docs/scoring.md)",
    ]


def test_pem_files_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv("LEADSYNC_SALESFORCE__CA_BUNDLE", str(ca))
    monkeypatch.setenv("LEADSYNC_SALESFORCE__PRIVATE_KEY_FILE", str(key))
    monkeypatch.setenv("LEADSYNC_SALESFORCE__USERNAME", "integration@corp.example")
    monkeypatch.setenv("LEADSYNC_SALESFORCE__CONSUMER_KEY", "3MVG9")
    settings = load_settings()
    assert settings.salesforce.auth_mode == "jwt"
    assert (settings.salesforce.ca_bundle, settings.salesforce.private_key_file) == (ca, key)


@pytest.mark.parametrize(("value", "level"), [("debug", "DEBUG"), ("Info", "INFO"),
                                              ("warn", "WARNING"), (" error ", "ERROR")])
def test_log_level_any_case(monkeypatch: pytest.MonkeyPatch, value: str, level: str) -> None:
    monkeypatch.setenv("LEADSYNC_LOG_LEVEL", value)
    assert load_settings().log_level == level


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("LOG_LEVEL", "verbose", "LEADSYNC_LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR "
                             "(any case)"),
    ("HUBSPOT__RATE_LIMIT_PER_10S", "lots", "LEADSYNC_HUBSPOT__RATE_LIMIT_PER_10S: expected a "
                                            "whole number"),
    ("HUBSPOT__RATE_LIMIT_SHARE", "2", "LEADSYNC_HUBSPOT__RATE_LIMIT_SHARE: expected a number "
                                       "at most 1.0"),
    ("HUBSPOT__TIMEOUT_SECONDS", "-1", "LEADSYNC_HUBSPOT__TIMEOUT_SECONDS: expected a number "
                                       "more than 0.0"),
    ("SYNC_INTERVAL_SECONDS", "1", "LEADSYNC_SYNC_INTERVAL_SECONDS: expected a number at "
                                   "least 10"),
    ("HTTP_MAX_ATTEMPTS", "0", "LEADSYNC_HTTP_MAX_ATTEMPTS: expected a number at least 1"),
])
def test_messages_in_the_projects_words(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                        expected: str) -> None:
    assert refused(monkeypatch, **{name: value}) == f"invalid settings:\n  {expected}"


def test_secrets_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused(monkeypatch, HUBSPOT__ACCESS_TOKEN="pat-na1-secret-value",
                      SALESFORCE__PASSWORD="hunter2", HUBSPOT__RATE_LIMIT_PER_10S="x")
    assert "pat-na1-secret-value" not in message and "hunter2" not in message


@pytest.mark.parametrize("env", [
    {"SALESFORCE__PASSWORD": "p"},
    {"SALESFORCE__SESSION_ID": "00Dxx!s"},
    {"SALESFORCE__USERNAME": "u@corp.example", "SALESFORCE__CONSUMER_KEY": "3MVG9"},
])
def test_incomplete_salesforce_login_is_refused_not_disabled(monkeypatch: pytest.MonkeyPatch,
                                                             env: dict[str, str]) -> None:
    message = refused(monkeypatch, **env)
    names = ", ".join(f"LEADSYNC_{k}" for k in sorted(env, key=list(env).index))
    assert message.startswith(f"invalid settings:\n  {names} set, but no complete Salesforce "
                              "login; expected one of: __USERNAME + __PASSWORD")


def test_no_salesforce_settings_at_all_is_disabled_quietly() -> None:
    assert load_settings().salesforce.enabled is False


def test_single_underscore_typos_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused(monkeypatch, HUBSPOT_ACCESS_TOKEN="pat-na1-secret",
                      SALESFORCE_STATUS__MAP="{}")
    assert message == (
        "invalid settings:\n"
        "  LEADSYNC_HUBSPOT_ACCESS_TOKEN is not a setting; did you mean "
        "LEADSYNC_HUBSPOT__ACCESS_TOKEN? (nested names use a double underscore)\n"
        "  LEADSYNC_SALESFORCE_STATUS__MAP is not a setting; did you mean "
        "LEADSYNC_SALESFORCE__STATUS_MAP? (nested names use a double underscore)")


def test_other_leadsync_variables_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
    monkeypatch.setenv("LEADSYNC_ENV_FILE", "/shared/sandbox.env")
    assert load_settings().redis_url is None
