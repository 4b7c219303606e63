"""build_connectors: only enabled CRMs are built; a disabled one is logged as such."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from leadsync.config.settings import HubSpotSettings, SalesforceSettings, Settings
from leadsync.connectors import HubSpotConnector, SalesforceConnector, build_connectors
from leadsync.connectors.base import Connector


def test_nothing_configured_builds_nothing_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="leadsync.connectors")
    assert (
        build_connectors(Settings(hubspot=HubSpotSettings(), salesforce=SalesforceSettings())) == []
    )
    text = caplog.text
    assert "HubSpot connector disabled" in text and "Salesforce connector disabled" in text


def test_enabled_connectors_satisfy_the_protocol_without_network() -> None:
    settings = Settings(
        hubspot=HubSpotSettings(access_token=SecretStr("pat-x")),
        salesforce=SalesforceSettings(instance_url="https://x.example", session_id=SecretStr("s")),
    )
    built = build_connectors(settings)
    assert [type(c) for c in built] == [HubSpotConnector, SalesforceConnector]
    assert all(isinstance(c, Connector) for c in built)
    assert [c.api_calls() for c in built] == [0, 0]  # construction sends nothing
