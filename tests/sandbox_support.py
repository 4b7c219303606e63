"""Helpers for the sandbox tests: real SDK clients pointed at a running `Sandbox`."""

from __future__ import annotations

import requests
from hubspot import Client
from simple_salesforce import Salesforce, SalesforceLogin

from leadsync.sandbox import Sandbox


def hubspot_client(sb: Sandbox, token: str | None = None) -> Client:
    return Client.create(access_token=token or sb.hubspot_token, host=sb.hubspot_url)


def sf_session(sb: Sandbox) -> requests.Session:
    """A session that trusts the sandbox CA (verification on). trust_env=False because
    REQUESTS_CA_BUNDLE in the environment would otherwise override `verify`."""
    session = requests.Session()
    session.verify = sb.ca_bundle
    session.trust_env = False
    return session


def salesforce(sb: Sandbox, session: requests.Session | None = None) -> Salesforce:
    """Log in the way the connector does (SOAP via scratch_url) and build the client."""
    session = session or sf_session(sb)
    env = sb.env
    sid, instance = SalesforceLogin(
        username=env["LEADSYNC_SALESFORCE__USERNAME"],
        password=env["LEADSYNC_SALESFORCE__PASSWORD"],
        security_token=env["LEADSYNC_SALESFORCE__SECURITY_TOKEN"],
        scratch_url=sb.salesforce_url,
        session=session,
    )
    return Salesforce(instance_url="https://" + instance, session_id=sid, session=session)
