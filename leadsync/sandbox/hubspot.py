"""HubSpot v3: routes, private-app token auth and rate limits (10 s window, search per second,
daily). Handlers live in `hs_contacts` (contacts, properties, owners), `hs_tasks` (tasks,
v3 events) and `hs_marketing` (email events, forms, form submissions)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from leadsync.sandbox.faults import FaultInjector
from leadsync.sandbox.hs_common import (
    hs_error,
)
from leadsync.sandbox.hs_companies import CompanyHandlers
from leadsync.sandbox.hs_contacts import ContactHandlers
from leadsync.sandbox.hs_deals import DealHandlers
from leadsync.sandbox.hs_marketing import MarketingHandlers
from leadsync.sandbox.hs_tasks import TaskHandlers
from leadsync.sandbox.store import Clock, RollingWindow, SandboxData, Stats
from leadsync.sandbox.wire import ApiError, Request, Response, correlation_id


class HubSpotApi(ContactHandlers, TaskHandlers, MarketingHandlers, DealHandlers, CompanyHandlers):
    """The HubSpot side of the sandbox, bound to one private-app token."""

    def __init__(
        self,
        data: SandboxData,
        clock: Clock,
        stats: Stats,
        faults: FaultInjector,
        *,
        token: str,
        rate_limit: int = 100,
        daily_limit: int = 250_000,
        search_per_second: int = 5,
    ) -> None:
        self.data, self.clock, self.stats, self.faults = data, clock, stats, faults
        self.token = token
        self.window = RollingWindow(rate_limit, 10.0)
        self.search_window = RollingWindow(search_per_second, 1.0)
        self.daily_limit = daily_limit
        self._daily: tuple[str, int] = ("", 0)
        c = r"/crm/v3/objects/contacts"
        t = r"/crm/v3/objects/tasks"
        p = r"/crm/v3/properties/(?P<object>contacts|contact|0-1)"
        pc = r"/crm/v3/properties/(?P<object>companies|company|0-2)"
        self.routes: list[tuple[str, re.Pattern[str], str, Callable[[Request], Response]]] = [
            ("GET", re.compile(c), "GET /crm/v3/objects/contacts", self.list_contacts),
            (
                "POST",
                re.compile(c + "/batch/read"),
                "POST /crm/v3/objects/contacts/batch/read",
                self.batch_read,
            ),
            (
                "POST",
                re.compile(c + "/batch/update"),
                "POST /crm/v3/objects/contacts/batch/update",
                self.batch_update,
            ),
            (
                "POST",
                re.compile(c + "/search"),
                "POST /crm/v3/objects/contacts/search",
                self.search_contacts,
            ),
            (
                "GET",
                re.compile(c + r"/(?P<id>\d+)"),
                "GET /crm/v3/objects/contacts/{id}",
                self.get_contact,
            ),
            (
                "PATCH",
                re.compile(c + r"/(?P<id>\d+)"),
                "PATCH /crm/v3/objects/contacts/{id}",
                self.update_contact,
            ),
            (
                "GET",
                re.compile(p + "/groups"),
                "GET /crm/v3/properties/contacts/groups",
                self.list_groups,
            ),
            (
                "POST",
                re.compile(p + "/groups"),
                "POST /crm/v3/properties/contacts/groups",
                self.create_group,
            ),
            ("GET", re.compile(p), "GET /crm/v3/properties/contacts", self.list_properties),
            ("POST", re.compile(p), "POST /crm/v3/properties/contacts", self.create_property),
            (
                "GET",
                re.compile(p + r"/(?P<name>\w+)"),
                "GET /crm/v3/properties/contacts/{name}",
                self.get_property,
            ),
            ("GET", re.compile(r"/crm/v3/owners"), "GET /crm/v3/owners", self.owners),
            ("GET", re.compile(r"/crm/v3/objects/deals"), "GET /crm/v3/objects/deals",
             self.list_deals),
            ("GET", re.compile(r"/crm/v3/objects/companies"), "GET /crm/v3/objects/companies",
             self.list_companies),
            ("GET", re.compile(r"/crm/v3/objects/companies/(?P<id>\d+)"),
             "GET /crm/v3/objects/companies/{id}", self.get_company),
            ("DELETE", re.compile(r"/crm/v3/objects/companies/(?P<id>\d+)"),
             "DELETE /crm/v3/objects/companies/{id}", self.delete_company),
            ("POST", re.compile(r"/crm/v3/objects/companies/search"),
             "POST /crm/v3/objects/companies/search", self.search_companies),
            ("POST", re.compile(r"/crm/v3/objects/companies/batch/update"),
             "POST /crm/v3/objects/companies/batch/update", self.batch_update_companies),
            ("GET", re.compile(pc + "/groups"), "GET /crm/v3/properties/companies/groups",
             self.list_groups),
            ("POST", re.compile(pc + "/groups"), "POST /crm/v3/properties/companies/groups",
             self.create_group),
            ("GET", re.compile(pc), "GET /crm/v3/properties/companies", self.list_properties),
            ("POST", re.compile(pc), "POST /crm/v3/properties/companies", self.create_property),
            ("POST", re.compile(t), "POST /crm/v3/objects/tasks", self.create_task),
            (
                "POST",
                re.compile(t + "/batch/create"),
                "POST /crm/v3/objects/tasks/batch/create",
                self.batch_create_tasks,
            ),
            (
                "POST",
                re.compile(t + "/batch/read"),
                "POST /crm/v3/objects/tasks/batch/read",
                self.batch_read_tasks,
            ),
            (
                "POST",
                re.compile(r"/crm/v4/associations/(?P<from>[\w-]+)/(?P<to>[\w-]+)/batch/read"),
                "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read",
                self.batch_associations,
            ),
            (
                "POST",
                re.compile(t + "/search"),
                "POST /crm/v3/objects/tasks/search",
                self.search_tasks,
            ),
            (
                "GET",
                re.compile(t + r"/(?P<id>\d+)"),
                "GET /crm/v3/objects/tasks/{id}",
                self.get_task,
            ),
            ("GET", re.compile(r"/events/v3/events"), "GET /events/v3/events", self.events),
            (
                "GET",
                re.compile(r"/email/public/v1/events"),
                "GET /email/public/v1/events",
                self.email_events,
            ),
            ("GET", re.compile(r"/marketing/v3/forms"), "GET /marketing/v3/forms", self.list_forms),
            (
                "GET",
                re.compile(r"/form-integrations/v1/submissions/forms/(?P<guid>[\w-]+)"),
                "GET /form-integrations/v1/submissions/forms/{guid}",
                self.form_submissions,
            ),
        ]

    # -- auth and limits -----------------------------------------------------------------------

    def authorize(self, req: Request, endpoint: str) -> dict[str, str]:
        """Check the token and the rate limits; return the rate-limit headers to send."""
        auth = req.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not given or not secrets.compare_digest(given, self.token):
            raise hs_error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        daily_left = self._spend_daily()
        if self.faults.faults.daily_429 or daily_left < 0:
            raise self._limited("DAILY", "You have reached your daily limit.", {})
        if self.faults.take_burst():
            self.stats.error_injected("hubspot")
            raise self._limited(
                "TEN_SECONDLY_ROLLING",
                "You have reached your ten_secondly_rolling limit.",
                self._headers(0, daily_left),
            )
        if endpoint.endswith("/search"):
            allowed, _ = self.search_window.try_acquire()
            if not allowed:
                raise self._limited("SECONDLY", "You have reached your secondly limit.", {})
            return {}
        allowed, remaining = self.window.try_acquire()
        if not allowed:
            raise self._limited(
                "TEN_SECONDLY_ROLLING",
                "You have reached your ten_secondly_rolling limit.",
                self._headers(0, daily_left),
            )
        return self._headers(remaining, daily_left)

    def _spend_daily(self) -> int:
        day = self.clock.now().date().isoformat()
        with self.data.lock:
            used = self._daily[1] + 1 if self._daily[0] == day else 1
            self._daily = (day, used)
        return self.daily_limit - used

    def _headers(self, remaining: int, daily_left: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(self.window.limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, daily_left)),
        }

    def _limited(self, policy: str, message: str, headers: dict[str, str]) -> ApiError:
        self.stats.rate_limited("hubspot")
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(),
            "policyName": policy,
        }
        return ApiError(429, body, headers)
