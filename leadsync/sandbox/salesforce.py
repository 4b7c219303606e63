"""Salesforce REST: routes, login (SOAP, OAuth), sessions, the rolling daily allocation and
Sforce-Limit-Info. Query handlers live in `sf_query`, write handlers in `sf_writes`."""

from __future__ import annotations

import html
import re
import secrets
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leadsync.sandbox.faults import FaultInjector
from leadsync.sandbox.sf_query import QueryHandlers
from leadsync.sandbox.sf_records import sf_error
from leadsync.sandbox.sf_writes import WriteHandlers
from leadsync.sandbox.soql import Query
from leadsync.sandbox.store import Clock, DailyAllowance, SandboxData, Stats
from leadsync.sandbox.wire import Request, Response, json_response

API = r"/services/data/v(?P<version>\d+\.\d)"


@dataclass(frozen=True, slots=True)
class SfCredentials:
    username: str
    password: str
    security_token: str


class SalesforceApi(QueryHandlers, WriteHandlers):
    """The Salesforce side of the sandbox. `instance` is `127.0.0.1:<port>` once serving."""

    def __init__(
        self,
        data: SandboxData,
        clock: Clock,
        stats: Stats,
        faults: FaultInjector,
        *,
        credentials: SfCredentials,
        daily_limit: int,
        session_ttl_seconds: float = 7200,
    ) -> None:
        self.data, self.clock, self.stats, self.faults = data, clock, stats, faults
        self.credentials = credentials
        self.allowance = DailyAllowance(daily_limit, clock)
        self.session_ttl = session_ttl_seconds
        self.instance = "127.0.0.1"
        self._sessions: dict[str, float] = {}
        self._cursors: OrderedDict[str, tuple[Query, list[dict[str, Any]], int]] = OrderedDict()
        self._lock = threading.Lock()
        self.routes: list[tuple[str, re.Pattern[str], str, Callable[[Request], Response]]] = [
            (
                "POST",
                re.compile(r"/services/Soap/u/[\d.]+"),
                "POST /services/Soap/u",
                self.soap_login,
            ),
            (
                "POST",
                re.compile(r"/services/oauth2/token"),
                "POST /services/oauth2/token",
                self.oauth,
            ),
            ("GET", re.compile(API + r"/query"), "GET /query", self.query),
            ("GET", re.compile(API + r"/queryAll"), "GET /queryAll", self.query_all),
            (
                "GET",
                re.compile(API + r"/query/(?P<locator>[\w-]+)"),
                "GET /query/{locator}",
                self.query_more,
            ),
            (
                "PATCH",
                re.compile(API + r"/composite/sobjects"),
                "PATCH /composite/sobjects",
                self.collection,
            ),
            (
                "POST",
                re.compile(API + r"/composite/sobjects"),
                "POST /composite/sobjects",
                self.collection,
            ),
            ("GET", re.compile(API + r"/limits"), "GET /limits", self.limits),
            (
                "GET",
                re.compile(API + r"/sobjects/(?P<object>\w+)/describe"),
                "GET /sobjects/{object}/describe",
                self.describe,
            ),
            (
                "POST",
                re.compile(API + r"/sobjects/(?P<object>\w+)"),
                "POST /sobjects/{object}",
                self.create_one,
            ),
            (
                "GET",
                re.compile(API + r"/sobjects/(?P<object>\w+)/(?P<id>\w+)"),
                "GET /sobjects/{object}/{id}",
                self.get_one,
            ),
            (
                "DELETE",
                re.compile(API + r"/sobjects/(?P<object>\w+)/(?P<id>\w+)"),
                "DELETE /sobjects/{object}/{id}",
                self.delete_one,
            ),
            (
                "PATCH",
                re.compile(API + r"/sobjects/(?P<object>\w+)/(?P<id>\w+)"),
                "PATCH /sobjects/{object}/{id}",
                self.update_one,
            ),
        ]

    # -- sessions and limits -------------------------------------------------------------------

    def expire_sessions(self) -> None:
        with self._lock:
            self._sessions.clear()

    def _new_session(self) -> str:
        sid = "00D5g0000000001!" + secrets.token_urlsafe(48)
        with self._lock:
            self._sessions[sid] = self.clock.now().timestamp() + self.session_ttl
        return sid

    def authorize(self, req: Request) -> None:
        """Check the session (401 INVALID_SESSION_ID) and spend one call of the daily allocation
        (403 REQUEST_LIMIT_EXCEEDED)."""
        auth = req.headers.get("authorization", "")
        sid = auth.split(" ", 1)[1].strip() if " " in auth else ""
        with self._lock:
            expires = self._sessions.get(sid)
        if expires is None or expires <= self.clock.now().timestamp():
            raise sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        allowed, _ = self.allowance.try_acquire()
        if not allowed:
            self.stats.rate_limited("salesforce")
            raise sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    def limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.allowance.used()}/{self.allowance.limit}"}

    # -- login ---------------------------------------------------------------------------------

    def _check_login(self, username: str, password: str) -> bool:
        c = self.credentials
        return secrets.compare_digest(username, c.username) and secrets.compare_digest(
            password, c.password + c.security_token
        )

    def soap_login(self, req: Request) -> Response:
        text = req.body.decode("utf-8", "replace")
        user = re.search(r"<(?:\w+:)?username>(.*?)</(?:\w+:)?username>", text, re.S)
        pwd = re.search(r"<(?:\w+:)?password>(.*?)</(?:\w+:)?password>", text, re.S)
        if (
            not user
            or not pwd
            or not self._check_login(html.unescape(user.group(1)), html.unescape(pwd.group(1)))
        ):
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
                "<faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid "
                "username, password, security token; or user locked out.</faultstring><detail>"
                "<sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
                "<sf:exceptionMessage>Invalid username, password, security token; or user "
                "locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>"
                "</soapenv:Body></soapenv:Envelope>"
            )
            return Response(500, fault.encode(), {"Content-Type": "text/xml;charset=UTF-8"})
        sid = self._new_session()
        base = f"https://{self.instance}"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<metadataServerUrl>{base}/services/Soap/m/59.0/00D5g0000000001</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{base}/services/Soap/u/59.0/00D5g0000000001</serverUrl>"
            f"<sessionId>{sid}</sessionId><userId>{self.data.sf_integration_user}</userId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, body.encode(), {"Content-Type": "text/xml;charset=UTF-8"})

    def oauth(self, req: Request) -> Response:
        form = {
            k: v[-1] for k, v in urllib.parse.parse_qs(req.body.decode("utf-8", "replace")).items()
        }
        grant = form.get("grant_type", "")
        ok = False
        if grant == "password":
            ok = self._check_login(form.get("username", ""), form.get("password", ""))
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            ok = _jwt_subject(form.get("assertion", "")) == self.credentials.username
        if not ok:
            return json_response(
                400, {"error": "invalid_grant", "error_description": "authentication failure"}
            )
        payload = {
            "access_token": self._new_session(),
            "instance_url": f"https://{self.instance}",
            "id": f"https://{self.instance}/id/00D5g0000000001/{self.data.sf_integration_user}",
            "token_type": "Bearer",
            "issued_at": str(int(self.clock.now().timestamp() * 1000)),
        }
        return json_response(200, payload)


def _jwt_subject(assertion: str) -> str | None:
    """The `sub` claim of a JWT (the sandbox does not verify signatures)."""
    import base64
    import json

    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("sub"))
    except (IndexError, ValueError):
        return None
