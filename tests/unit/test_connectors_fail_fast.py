"""A host name that does not resolve fails at once, naming the host and the setting; a refused
connection is retried under the policy and the final error names the host too."""

from __future__ import annotations

import socket
import time

import pytest
import requests
import urllib3

from leadsync.config.settings import HubSpotSettings, SalesforceSettings
from leadsync.connectors.base import TransientError
from leadsync.connectors.http import Retryable, RetryPolicy, connection_failure, utc_now
from leadsync.connectors.hubspot.client import HubSpotClient
from leadsync.connectors.ratelimit import DailyBudget
from leadsync.connectors.salesforce.client import SalesforceClient


def test_name_resolution_errors_are_not_retryable() -> None:
    dns = urllib3.exceptions.NameResolutionError("h", None, socket.gaierror(-2, "Name"))  # type: ignore[arg-type]
    wrapped = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", dns))  # type: ignore[arg-type]
    failure = connection_failure("HubSpot", "no-such.invalid", "LEADSYNC_HUBSPOT__BASE_URL",
                                 wrapped)
    assert isinstance(failure, TransientError)
    assert str(failure) == ("HubSpot at no-such.invalid: the host name does not resolve; check "
                            "LEADSYNC_HUBSPOT__BASE_URL (and DNS)")


def test_refused_and_timed_out_connections_are_retryable_and_name_the_host() -> None:
    refused = connection_failure("HubSpot", "127.0.0.1:1", "X", ConnectionRefusedError(111, "r"))
    assert isinstance(refused, Retryable)
    assert refused.reason == "127.0.0.1:1: connection failed (ConnectionRefusedError)"
    slow = connection_failure("HubSpot", "h:1", "X", requests.ReadTimeout("read timed out"))
    assert isinstance(slow, Retryable) and slow.reason == "h:1: timed out"


def test_hubspot_unresolvable_host_fails_in_one_attempt() -> None:
    sleeps: list[float] = []
    client = HubSpotClient(HubSpotSettings(access_token="pat-na1-x",  # type: ignore[arg-type]
                                           base_url="http://no-such-host.invalid"),
                           policy=RetryPolicy(sleep=sleeps.append))
    started = time.monotonic()
    with pytest.raises(TransientError) as info:
        client.call("owners", client.owners.get_page, limit=1)
    assert str(info.value).startswith("HubSpot at no-such-host.invalid: the host name")
    assert client.calls.value == 1 and sleeps == []
    assert time.monotonic() - started < 5


def test_hubspot_refused_port_is_retried_then_named() -> None:
    sleeps: list[float] = []
    client = HubSpotClient(HubSpotSettings(access_token="pat-na1-x",  # type: ignore[arg-type]
                                           base_url="http://127.0.0.1:1"),
                           policy=RetryPolicy(max_attempts=3, sleep=sleeps.append))
    with pytest.raises(TransientError) as info:
        client.call("owners", client.owners.get_page, limit=1)
    assert client.calls.value == 3 and len(sleeps) == 2
    assert str(info.value).startswith(
        "HubSpot owners: gave up after 3 attempts (127.0.0.1:1: connection failed")


def test_salesforce_unresolvable_login_host_fails_in_one_attempt() -> None:
    sleeps: list[float] = []
    settings = SalesforceSettings(username="u@corp.example", password="p",  # type: ignore[arg-type]
                                  login_url="https://no-such-host.invalid")
    client = SalesforceClient(settings, budget=DailyBudget(0.5, clock=utc_now),
                              policy=RetryPolicy(sleep=sleeps.append))
    with pytest.raises(TransientError) as info:
        _ = client.sf
    assert str(info.value) == ("Salesforce at no-such-host.invalid: the host name does not "
                               "resolve; check LEADSYNC_SALESFORCE__DOMAIN / __LOGIN_URL (and DNS)")
    assert client.api_calls() == 1 and sleeps == []
