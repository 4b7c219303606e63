"""leadsync.connectors: HubSpot and Salesforce behind one Protocol (see `base`).

The adapters (and their SDKs) are imported lazily, so importing `leadsync.connectors.base`
stays cheap for code that only needs the records and error kinds.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from leadsync.connectors.base import Connector

if TYPE_CHECKING:
    from leadsync.config.settings import Settings
    from leadsync.connectors.hubspot.adapter import HubSpotConnector
    from leadsync.connectors.salesforce.adapter import SalesforceConnector

__all__ = ["HubSpotConnector", "SalesforceConnector", "build_connectors"]
log = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    if name == "HubSpotConnector":
        from leadsync.connectors.hubspot.adapter import HubSpotConnector

        return HubSpotConnector
    if name == "SalesforceConnector":
        from leadsync.connectors.salesforce.adapter import SalesforceConnector

        return SalesforceConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_connectors(settings: Settings, redis: Any | None = None) -> list[Connector]:
    """The enabled connectors (credentials present); a disabled one is logged as such."""
    from leadsync.connectors.http import RetryPolicy
    from leadsync.connectors.hubspot.adapter import HubSpotConnector
    from leadsync.connectors.salesforce.adapter import SalesforceConnector

    policy = RetryPolicy(max_attempts=settings.http_max_attempts,
                         max_total_seconds=settings.http_max_retry_seconds)
    connectors: list[Connector] = []
    if settings.hubspot.enabled:
        connectors.append(HubSpotConnector(settings.hubspot, redis=redis, policy=policy))
    else:
        log.info("HubSpot connector disabled: LEADSYNC_HUBSPOT__ACCESS_TOKEN is not set",
                 extra={"system": "hubspot"})  # fmt: skip
    if settings.salesforce.enabled:
        connectors.append(SalesforceConnector(settings.salesforce, redis=redis, policy=policy))
    else:
        log.info("Salesforce connector disabled: no username/password, session or JWT settings",
                 extra={"system": "salesforce"})  # fmt: skip
    return connectors
