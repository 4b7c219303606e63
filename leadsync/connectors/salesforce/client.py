"""simple-salesforce over one policy-wrapped `requests.Session`.

`PolicySession` is the HTTP boundary for Salesforce: every request (logins included) passes
the daily budget, gets a timeout, is counted, and is retried under the one tenacity policy.
403 REQUEST_LIMIT_EXCEEDED stops the run (`BudgetExhausted`); 401 INVALID_SESSION_ID triggers
one re-login through the connector's callback and one replay (a 401 did nothing, so the replay
is safe for creates too). A POST to the data API (`/services/data/...`: Collections and sObject
creates) is not idempotent unless the caller says so: a failure after it was sent raises
`OutcomeUnknown` instead of a replay. requests' own adapters never retry (`Retry(0, read=False)`)
and simple-salesforce's 401 replay is off for a client built from a session id, as here.
`SalesforceClient` logs in by password (SOAP), session id + instance URL, or JWT bearer, and
exposes `query_pages` / `rest`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError
from simple_salesforce.login import SalesforceLogin

from leadsync.config.settings import SalesforceSettings
from leadsync.connectors.base import AuthError, BudgetExhausted, ConnectorError
from leadsync.connectors.http import (
    RETRYABLE_STATUS,
    CallCounter,
    RetryPolicy,
    call_with_policy,
    connection_failure,
    parse_retry_after,
    redact,
    status_failure,
)
from leadsync.connectors.ratelimit import ORG_FULL_PAUSE_SECONDS, DailyBudget

log = logging.getLogger(__name__)


class SalesforceRequestError(ConnectorError):
    """A request Salesforce refused (4xx other than auth and limits); message is redacted."""

    def __init__(self, op: str, status: int, code: str, message: str) -> None:
        super().__init__(f"Salesforce {op}: {status} {code}: {message}")
        self.status = status
        self.code = code


def error_code(resp: requests.Response) -> str:
    """The first `errorCode` of a REST error body ('' when there is none)."""
    try:
        body = resp.json()
    except ValueError:
        return ""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode", ""))
    return str(body.get("error", "")) if isinstance(body, dict) else ""


class PolicySession(requests.Session):
    """A requests.Session whose every request goes through budget, timeout, count and retry."""

    def __init__(
        self,
        *,
        policy: RetryPolicy,
        budget: DailyBudget,
        timeout: float,
        on_expired: Callable[[], str] | None = None,
    ) -> None:
        super().__init__()
        self.policy = policy
        self.budget = budget
        self.timeout = timeout
        self.calls = CallCounter()
        self.on_expired = on_expired

    def _attempt(self, method: str, url: str, kwargs: dict[str, Any]) -> requests.Response:
        self.budget.spend()  # atomic check-and-count, shared by every worker
        self.calls.add()
        try:
            resp = super().request(method, url, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            setting = ("LEADSYNC_SALESFORCE__DOMAIN / __LOGIN_URL" if "/services/Soap/u/" in url
                       or "/oauth2/" in url else "LEADSYNC_SALESFORCE__INSTANCE_URL")
            raise connection_failure("Salesforce", urlsplit(url).netloc, setting, exc) from None
        self.budget.observe(resp.headers.get("Sforce-Limit-Info"))
        if resp.status_code == 403 and error_code(resp) == "REQUEST_LIMIT_EXCEEDED":
            self.budget.pause(ORG_FULL_PAUSE_SECONDS)  # every worker stops asking for an hour
            raise BudgetExhausted(
                "Salesforce daily API limit exceeded (403 REQUEST_LIMIT_EXCEEDED)"
            )
        is_soap_fault = "/services/Soap/" in url and b"Fault" in resp.content[:2000]
        if resp.status_code in RETRYABLE_STATUS and not is_soap_fault:
            code = error_code(resp)
            raise status_failure(
                resp.status_code, f"HTTP {resp.status_code} {code}".strip(),
                parse_retry_after(resp.headers.get("Retry-After")),
                rate_limited="LIMIT" in code.upper() or "TOO_MANY" in code.upper(),
            )  # fmt: skip
        return resp

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, idempotent: bool | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send under the policy. `idempotent` defaults to False for a POST to the data API
        (a create) and True for everything else (reads, PATCH updates, logins)."""
        if args:
            raise TypeError("PolicySession.request takes keyword arguments only")
        replayable = (idempotent if idempotent is not None
                      else not (method.upper() == "POST" and "/services/data/" in url))  # fmt: skip
        kwargs.setdefault("timeout", self.timeout)
        if self.verify is not True:
            # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override Session.verify; the
            # configured CA bundle must win, so it is passed per request.
            kwargs.setdefault("verify", self.verify)
        path = url.split("?", maxsplit=1)[0].rsplit("/services/", 1)[-1]
        op = f"Salesforce {method} {path[:60]}"

        def send() -> requests.Response:
            return call_with_policy(op, lambda: self._attempt(method, url, kwargs), self.policy,
                                    idempotent=replayable)  # fmt: skip

        resp = send()
        if resp.status_code == 401 and error_code(resp) == "INVALID_SESSION_ID":
            if self.on_expired is None:
                raise AuthError("Salesforce session expired and session-id auth cannot re-login")
            log.info("Salesforce session expired; logging in again", extra={"op": op})
            token = self.on_expired()
            headers = dict(kwargs.get("headers") or {})
            headers["Authorization"] = f"Bearer {token}"
            kwargs["headers"] = headers
            resp = send()
            if resp.status_code == 401:
                raise AuthError("Salesforce rejected the session right after re-login (401)")
        return resp


def _jwt_token(settings: SalesforceSettings, session: requests.Session) -> tuple[str, str]:
    """JWT bearer grant posted to `{login_url}/services/oauth2/token` -> (token, instance)."""
    if not settings.private_key_file or not settings.consumer_key or not settings.username:
        raise AuthError("LEADSYNC_SALESFORCE__PRIVATE_KEY_FILE/CONSUMER_KEY/USERNAME needed")
    try:
        key = settings.private_key_file.read_bytes()
    except OSError:
        raise AuthError("LEADSYNC_SALESFORCE__PRIVATE_KEY_FILE cannot be read") from None
    login_url = str(settings.login_url).rstrip("/")
    claims = {"iss": settings.consumer_key, "sub": settings.username, "aud": login_url,
              "exp": int((datetime.now(UTC) + timedelta(minutes=3)).timestamp())}  # fmt: skip
    assertion = jwt.encode(claims, key, algorithm="RS256")
    resp = session.post(
        f"{login_url}/services/oauth2/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
    )
    if resp.status_code != 200:
        raise AuthError(f"Salesforce JWT login refused ({resp.status_code} {error_code(resp)})")
    body = resp.json()
    instance = str(body["instance_url"]).split("://", 1)[-1].rstrip("/")
    return str(body["access_token"]), instance


def login(settings: SalesforceSettings, session: requests.Session) -> tuple[str, str]:
    """(session id, instance host[:port]) for the configured auth mode."""
    mode = settings.auth_mode
    try:
        if mode == "session":
            instance = str(settings.instance_url).split("://", 1)[-1].rstrip("/")
            return settings.session_id.get_secret_value(), instance  # type: ignore[union-attr]
        if mode == "password":
            token = settings.security_token.get_secret_value() if settings.security_token else ""
            password = settings.password.get_secret_value()  # type: ignore[union-attr]
            extra: dict[str, Any] = (
                {"scratch_url": settings.login_url.rstrip("/")}
                if settings.login_url
                else {"domain": settings.domain}
            )
            result: tuple[str, str] = SalesforceLogin(
                username=settings.username, password=password, security_token=token,
                sf_version=settings.api_version, session=session, **extra,
            )  # fmt: skip
            return result
        if mode == "jwt":
            if settings.login_url:
                return _jwt_token(settings, session)
            jwt_result: tuple[str, str] = SalesforceLogin(
                username=settings.username, consumer_key=settings.consumer_key,
                privatekey_file=str(settings.private_key_file), domain=settings.domain,
                session=session,
            )  # fmt: skip
            return jwt_result
    except SalesforceAuthenticationFailed as exc:
        raise AuthError(f"Salesforce login refused ({redact(exc.code, 60)})") from None
    raise AuthError("Salesforce has no credentials (LEADSYNC_SALESFORCE__USERNAME etc.)")


class SalesforceClient:
    """A logged-in simple-salesforce client that re-logs in once when the session expires."""

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        budget: DailyBudget,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        can_relogin = settings.auth_mode in ("password", "jwt")
        self.session = PolicySession(
            policy=policy or RetryPolicy(sleep=sleep),
            budget=budget,
            timeout=settings.timeout_seconds,
            on_expired=self._relogin if can_relogin else None,
        )
        if settings.ca_bundle:
            self.session.verify = str(settings.ca_bundle)
        self._sf: Salesforce | None = None

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._relogin()
        assert self._sf is not None
        return self._sf

    def _relogin(self) -> str:
        session_id, instance = login(self.settings, self.session)
        self._sf = Salesforce(session_id=session_id, instance=instance, session=self.session,
                              version=self.settings.api_version)  # fmt: skip
        return session_id

    def _guard(self, op: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except SalesforceError as exc:
            code = _content_code(exc.content)
            if code in ("INVALID_FIELD", "INVALID_TYPE", "NOT_FOUND") or exc.status in (401, 403):
                raise AuthError(
                    f"Salesforce {op}: {exc.status} {code} (check fields/permissions)"
                ) from None
            raise SalesforceRequestError(op, exc.status, code, "request refused") from None

    def query_pages(self, op: str, soql: str, *, include_deleted: bool = False
                    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of records for `soql`, following nextRecordsUrl; `include_deleted`: through
        `queryAll` (the recycle bin's records too). A page is the caller's until it asks for
        the next one: the list is emptied then, before the next page is read, so one page of
        up to 2,000 decoded records is in memory, not two (the caller's loop variable still
        holds the previous page while the next is fetched). Keep the records, not the list."""
        page: Any = self._guard(op, lambda: self.sf.query(soql, include_deleted=include_deleted))
        while True:
            records: list[dict[str, Any]] = list(page.get("records") or [])
            nxt = page.get("nextRecordsUrl")
            last = page.get("done", True) or not nxt
            page = None  # the response's own copy goes now
            yield records
            if last:
                return
            records.clear()
            page = self._guard(op, functools.partial(self._more, str(nxt)))

    def _more(self, url: str) -> Any:
        return self.sf.query_more(url, identifier_is_url=True)

    def rest(
        self, op: str, path: str, method: str = "GET", json: Any = None,
        *, idempotent: bool | None = None,
    ) -> Any:
        """`sf.restful(path)` under the guard (paths relative to /services/data/vXX.X/);
        `idempotent` reaches `PolicySession.request` (default: False for POST, see there)."""
        kwargs: dict[str, Any] = {"json": json} if json is not None else {}
        if idempotent is not None:
            kwargs["idempotent"] = idempotent
        return self._guard(op, lambda: self.sf.restful(path, method=method, **kwargs))

    def api_calls(self) -> int:
        return self.session.calls.value


def soql(fields: str, obj: str, where: str = "", order: str = "") -> str:
    """A SOQL statement from trusted parts: field lists and object names come from code and
    settings, datetimes are formatted by us, and user values go through `format_soql` first."""
    text = f"SELECT {fields} FROM {obj}"  # noqa: S608 - see docstring; no raw user input here
    if where:
        text += f" WHERE {where}"
    if order:
        text += f" ORDER BY {order}"
    return text


def _content_code(content: object) -> str:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", ""))
    return ""
