"""hubspot-api-client behind the one retry policy, the shared rate limiter and a call counter.

The SDK client and its API objects are built once (each attribute access builds a new urllib3
pool). The SDK's own retries are switched off (`retry=False`) so that every request goes through
`call()`: rate limiter, timeout, count, classification, tenacity. Responses are read raw
(`_preload_content=False`) and parsed as JSON, which keeps the mapping layer on plain dicts and
lets us see status codes such as 207 and the rate headers.

Endpoints without an SDK wrapper (email events, forms, form submissions) go through
`request()`: the SDK's own `api_request` builder (`hubspot.utils.requests.http_request_builder.
Request`: base URL, bearer auth, query string, JSON body) sent on one kept-alive
`requests.Session` with our timeout (`api_request` itself sends with no timeout), under the
same limiter, counter, classification and tenacity policy as `call()`.

Creates pass `idempotent=False`: a failure after the request was sent (reset, read timeout,
5xx) is then raised as `OutcomeUnknown` instead of being replayed (see `connectors.http`).
With `retry=False` the SDK's urllib3 pool never retries on its own either.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import hubspot
import requests
import urllib3
from hubspot.utils.requests.http_request_builder import Request as SdkRequest

from leadsync.config.settings import HubSpotSettings
from leadsync.connectors.base import AuthError, BudgetExhausted, ConnectorError
from leadsync.connectors.http import (
    CallCounter,
    RetryPolicy,
    call_with_policy,
    connection_failure,
    parse_retry_after,
    redact,
    status_failure,
)
from leadsync.connectors.ratelimit import RateLimiter, window_limiter

log = logging.getLogger(__name__)


class HubSpotRequestError(ConnectorError):
    """A 4xx HubSpot refused for this request (not auth, not rate): the caller decides what
    it means (a rejected batch, a search past its cap, a missing object)."""

    def __init__(self, op: str, status: int, category: str, message: str) -> None:
        super().__init__(f"HubSpot {op}: {status} {category}: {message}")
        self.status = status
        self.category = category
        self.message = message


def _body_json(body: object) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if isinstance(body, str) and body else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def rate_pause(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to hold off when the X-HubSpot-RateLimit-* headers say the window is spent:
    one slot's share of the interval (the rolling window frees a slot about that often)."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    remaining = lowered.get("x-hubspot-ratelimit-remaining", "")
    interval = lowered.get("x-hubspot-ratelimit-interval-milliseconds", "")
    most = lowered.get("x-hubspot-ratelimit-max", "")
    if not (remaining.isdigit() and interval.isdigit() and most.isdigit()) or int(remaining) > 0:
        return None
    return int(interval) / 1000 / max(1, int(most))


def classify_hubspot_error(
    op: str, status: int, body: object, headers: Mapping[str, str] | None
) -> Exception:
    """The exception a non-2xx HubSpot answer becomes (see STYLE.md §5's three kinds)."""
    data = _body_json(body)
    category = str(data.get("category") or data.get("errorType") or "")
    message = redact(data.get("message", ""), 200)
    if status == 429:
        if str(data.get("policyName", "")).upper() == "DAILY":
            return BudgetExhausted("HubSpot daily API limit reached (429 DAILY): wait for reset")
        retry_after = parse_retry_after((headers or {}).get("Retry-After"))
        if retry_after is None:
            retry_after = rate_pause(headers)
        limited = bool(data.get("policyName")) or "RATE_LIMIT" in (
            str(data.get("errorType", "")) + category).upper()
        return status_failure(429, f"429 {data.get('policyName', 'RATE_LIMIT')}", retry_after,
                              rate_limited=limited)  # fmt: skip
    if status >= 500 or status in (408, 425) or status == 0:
        return status_failure(status, f"HTTP {status}")
    if status == 401:
        return AuthError(f"HubSpot {op}: access token rejected (401 {category})")
    if status == 403:
        return AuthError(f"HubSpot {op}: forbidden, missing scope? (403 {category}: {message})")
    return HubSpotRequestError(op, status, category, message)


class HubSpotClient:
    """The SDK's API objects plus `call()`, the one way requests are sent."""

    def __init__(
        self,
        settings: HubSpotSettings,
        *,
        redis: Any | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if settings.access_token is None:
            raise AuthError("LEADSYNC_HUBSPOT__ACCESS_TOKEN is not set")
        self.timeout = settings.timeout_seconds
        self.policy = policy or RetryPolicy(sleep=sleep)
        self.calls = CallCounter()
        client = hubspot.Client.create(
            access_token=settings.access_token.get_secret_value(),
            host=settings.base_url.rstrip("/"),
            retry=False,
        )
        # what `client.api_request` builds from: the token and `base_url` (not `host`)
        self._raw_config = {"access_token": settings.access_token.get_secret_value(),
                            "base_url": settings.base_url.rstrip("/")}  # fmt: skip
        self._session = requests.Session()
        crm = client.crm
        self.contacts_basic = crm.contacts.basic_api
        self.contacts_batch = crm.contacts.batch_api
        self.contacts_search = crm.contacts.search_api
        self.deals_basic = crm.deals.basic_api
        self.companies_basic = crm.companies.basic_api
        self.companies_batch = crm.companies.batch_api
        self.companies_search = crm.companies.search_api
        self.tasks_batch = crm.objects.tasks.batch_api
        self.tasks_search = crm.objects.tasks.search_api
        self.associations_batch = crm.associations.v4.batch_api
        self.properties = crm.properties.core_api
        self.groups = crm.properties.groups_api
        self.owners = crm.owners.owners_api
        self.events = client.events.events_api
        per_window = max(1, int(settings.rate_limit_per_10s * settings.rate_limit_share))
        # one window per private app (HubSpot's unit), named by a short hash, never the token
        app = hashlib.sha256(settings.access_token.get_secret_value().encode()).hexdigest()[:12]
        self.limiter: RateLimiter = window_limiter(
            redis, f"leadsync:hubspot:{app}:rate:10s", per_window, 10.0, sleep
        )
        per_second = max(1, math.floor(settings.search_per_second))
        self.search_limiter: RateLimiter = window_limiter(
            redis, f"leadsync:hubspot:{app}:rate:search", per_second, 1.0, sleep
        )
        self.last_rate_headers: dict[str, str] = {}

    def call(
        self, op: str, fn: Callable[..., Any], *args: Any, search: bool = False,
        idempotent: bool = True, **kwargs: Any,
    ) -> tuple[int, dict[str, Any]]:
        """Send one SDK request under the policy; return (status, parsed JSON body).
        `idempotent=False` for creates: never replayed once it may have been processed."""

        def attempt() -> tuple[int, dict[str, Any]]:
            self.limiter.acquire()
            if search:
                self.search_limiter.acquire()
            self.calls.add()
            try:
                resp = fn(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise self._connection_failure(exc) from None
            except Exception as exc:
                status = getattr(exc, "status", None)
                if not isinstance(status, int):
                    raise
                raise classify_hubspot_error(
                    op, status, getattr(exc, "body", None), getattr(exc, "headers", None)
                ) from None
            self._observe(resp.headers)
            return int(resp.status), _body_json(resp.data)

        return call_with_policy(f"HubSpot {op}", attempt, self.policy, idempotent=idempotent)

    def request(
        self,
        op: str,
        method: str,
        path: str,
        qs: Mapping[str, object] | None = None,
        body: object = None,
    ) -> tuple[int, dict[str, Any]]:
        """Send one request to an endpoint the SDK does not wrap; return (status, JSON body)."""
        options: dict[str, Any] = {"method": method, "path": path}
        if qs:
            options["qs"] = dict(qs)
        if body is not None:
            options["body"] = body
        built = SdkRequest(self._raw_config, options)

        def attempt() -> tuple[int, dict[str, Any]]:
            self.limiter.acquire()
            self.calls.add()
            try:
                resp = self._session.request(
                    built.get_method(), built.get_url(), timeout=self.timeout,
                    **built.get_options_for_sending(),
                )  # fmt: skip
            except requests.RequestException as exc:
                raise self._connection_failure(exc) from None
            if resp.status_code >= 300:
                raise classify_hubspot_error(op, resp.status_code, resp.content, resp.headers)
            self._observe(resp.headers)
            return resp.status_code, _body_json(resp.content)

        return call_with_policy(f"HubSpot {op}", attempt, self.policy)

    def _connection_failure(self, exc: BaseException) -> Exception:
        host = urlsplit(self._raw_config["base_url"]).netloc
        return connection_failure("HubSpot", host, "LEADSYNC_HUBSPOT__BASE_URL", exc)

    def _observe(self, headers: Mapping[str, str] | None) -> None:
        """Remember the rate headers; when they say the window is spent, pause before the
        next request instead of drawing a 429 (search responses carry no such headers)."""
        rate = {k: v for k, v in (headers or {}).items()
                if k.lower().startswith("x-hubspot-ratelimit")}  # fmt: skip
        if not rate:
            return
        self.last_rate_headers = rate
        pause = rate_pause(rate)
        if pause:
            log.info("HubSpot rate window spent; pausing", extra={"wait_s": round(pause, 3)})
            self.policy.sleep(pause)
