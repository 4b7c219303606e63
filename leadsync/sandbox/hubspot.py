"""HubSpot v3 handlers: contacts (list, read, batch read/update, search), properties and groups,
owners, tasks (create, batch create, search) and the events API; token auth and rate limits."""

from __future__ import annotations

import bisect
import json
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from leadsync.sandbox import hs_search
from leadsync.sandbox.faults import FaultInjector
from leadsync.sandbox.hs_schema import (
    LIFECYCLE,
    READ_ONLY,
    TASK_OPTIONS,
    TASK_TYPES,
    normalize,
    normalize_time,
    property_definition,
)
from leadsync.sandbox.store import Clock, RollingWindow, SandboxData, Stats, hs_time, task_key
from leadsync.sandbox.wire import ApiError, Request, Response, correlation_id, json_response

BATCH_LIMIT = 100
DEFAULT_PROPS = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")
TASK_DEFAULT_PROPS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
CONTACT_ASSOCIATION = 204


def invalid_property(name: str, error: str, message: str) -> ApiError:
    """HubSpot's 400 for a property value it refuses (unknown property, bad option, ...)."""
    detail = [{"isValid": False, "message": message, "error": error, "name": name}]
    text = "Property values were not valid: " + json.dumps(detail, ensure_ascii=False)
    return hs_error(400, "VALIDATION_ERROR", text)


def hs_error(status: int, category: str, message: str, **extra: Any) -> ApiError:
    return ApiError(
        status,
        {
            "status": "error",
            "message": message,
            "correlationId": correlation_id(),
            "category": category,
            **extra,
        },
    )


class HubSpotApi:
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
            ("POST", re.compile(t), "POST /crm/v3/objects/tasks", self.create_task),
            (
                "POST",
                re.compile(t + "/batch/create"),
                "POST /crm/v3/objects/tasks/batch/create",
                self.batch_create_tasks,
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

    # -- contacts ------------------------------------------------------------------------------

    def _types(self) -> dict[str, str]:
        return {name: d["type"] for name, d in self.data.hs_properties.items()}

    def _object(
        self,
        rid: str,
        props: dict[str, str],
        wanted: list[str] | tuple[str, ...],
        created_key: str = "createdate",
        modified_key: str = "lastmodifieddate",
    ) -> dict[str, Any]:
        return {
            "id": rid,
            "properties": {k: props.get(k) for k in wanted},
            "createdAt": props.get(created_key),
            "updatedAt": props.get(modified_key),
            "archived": False,
        }

    def _wanted(self, req_props: Any, default: tuple[str, ...]) -> list[str]:
        if not req_props:
            return list(default)
        names: list[str] = []
        for item in req_props if isinstance(req_props, list) else [req_props]:
            names.extend(n.strip() for n in str(item).split(",") if n.strip())
        return names

    def list_contacts(self, req: Request) -> Response:
        limit = _int_arg(req, "limit", 10, 1, 100)
        after = _int_arg(req, "after", 0, 0, None)
        wanted = self._wanted(req.query.get("properties"), DEFAULT_PROPS)
        with self.data.lock:
            ids = self._sorted_ids()
            start = bisect.bisect_right(ids, after)
            chunk = ids[start : start + limit]
            results = [self._object(str(i), self.data.hs_contacts[str(i)], wanted) for i in chunk]
            more = start + limit < len(ids)
        payload: dict[str, Any] = {"results": results}
        if more and chunk:
            payload["paging"] = {
                "next": {"after": str(chunk[-1] + 1 - 1), "link": f"{req.path}?after={chunk[-1]}"}
            }
        return json_response(200, payload, records=len(results))

    def _sorted_ids(self) -> list[int]:
        cached = getattr(self, "_ids_cache", None)
        if cached is None or cached[0] != len(self.data.hs_contacts):
            cached = (len(self.data.hs_contacts), sorted(int(i) for i in self.data.hs_contacts))
            self._ids_cache = cached
        return cached[1]

    def get_contact(self, req: Request) -> Response:
        wanted = self._wanted(req.query.get("properties"), DEFAULT_PROPS)
        with self.data.lock:
            props = self.data.hs_contacts.get(req.params["id"])
            if props is None:
                raise hs_error(
                    404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric."
                )
            return json_response(200, self._object(req.params["id"], props, wanted), records=1)

    def batch_read(self, req: Request) -> Response:
        body = req.json()
        inputs = _inputs(body)
        wanted = self._wanted(body.get("properties"), DEFAULT_PROPS)
        results, errors = [], []
        with self.data.lock:
            for item in inputs:
                rid = str(item.get("id", "")) if isinstance(item, dict) else ""
                props = self.data.hs_contacts.get(rid)
                if props is None:
                    errors.append(rid)
                else:
                    results.append(self._object(rid, props, wanted))
        return self._batch_response(
            results,
            [
                _batch_error(
                    "OBJECT_NOT_FOUND",
                    "Could not get some CONTACT objects, they may be deleted or not exist.",
                    errors,
                )
            ]
            if errors
            else [],
        )

    def batch_update(self, req: Request) -> Response:
        inputs = _inputs(req.json())
        results, errors = [], []
        stamp = hs_time(self.clock.now())
        with self.data.lock:
            for item in inputs:
                rid = str(item.get("id", "")) if isinstance(item, dict) else ""
                props_in = item.get("properties") if isinstance(item, dict) else None
                try:
                    if not isinstance(props_in, dict):
                        raise hs_error(
                            400, "VALIDATION_ERROR", "each input needs id and properties"
                        )
                    if self.faults.chance(self.faults.faults.record_failure_rate):
                        self.stats.error_injected("hubspot")
                        raise hs_error(
                            409,
                            "CONFLICT",
                            "Another update to this object is in progress; try again later.",
                        )
                    results.append(self._update(rid, props_in, stamp))
                except ApiError as exc:
                    errors.append(_batch_error(exc.body["category"], exc.body["message"], [rid]))
        return self._batch_response(results, errors)

    def update_contact(self, req: Request) -> Response:
        body = req.json()
        with self.data.lock:
            obj = self._update(
                req.params["id"], body.get("properties") or {}, hs_time(self.clock.now())
            )
        return json_response(200, obj, records=1)

    def _update(self, rid: str, values: dict[str, Any], stamp: str) -> dict[str, Any]:
        """Validate and apply one contact update; raise ApiError naming the property at fault."""
        props = self.data.hs_contacts.get(rid)
        if props is None:
            raise hs_error(404, "OBJECT_NOT_FOUND", f"Object not found. objectId={rid}")
        clean: dict[str, str] = {}
        for name, value in values.items():
            definition = self.data.hs_properties.get(name)
            if definition is None:
                raise invalid_property(
                    name, "PROPERTY_DOESNT_EXIST", f"Property {name!r} does not exist"
                )
            if name in READ_ONLY:
                raise hs_error(400, "VALIDATION_ERROR", f"Property {name!r} is read-only")
            try:
                options = [o["value"] for o in definition.get("options", [])]
                clean[name] = normalize(definition["type"], options, value)
            except ValueError as exc:
                raise invalid_property(name, "INVALID_OPTION", str(exc)) from None
        stage = clean.get("lifecyclestage")
        current = props.get("lifecyclestage") or ""
        if stage and current and LIFECYCLE.index(stage) < LIFECYCLE.index(current):
            raise invalid_property(
                "lifecyclestage",
                "INVALID_OPTION",
                f"{stage} is not a valid option: lifecyclestage can only move forward "
                f"(currently {current}); clear it first",
            )
        for name, value in clean.items():
            if value == "":
                props.pop(name, None)
            else:
                props[name] = value
        props["lastmodifieddate"] = stamp
        self.stats.written("hubspot")
        return self._object(rid, props, list(dict.fromkeys([*DEFAULT_PROPS, *clean])))

    def _batch_response(
        self, results: list[dict[str, Any]], errors: list[dict[str, Any]], ok_status: int = 200
    ) -> Response:
        now = hs_time(self.clock.now())
        payload: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": now,
            "completedAt": now,
            "requestedAt": now,
            "links": {},
        }
        if errors:
            payload["numErrors"] = len(errors)
            payload["errors"] = errors
        return json_response(207 if errors else ok_status, payload, records=len(results))

    def search_contacts(self, req: Request) -> Response:
        body = req.json()
        wanted = self._wanted(body.get("properties"), DEFAULT_PROPS)
        with self.data.lock:
            page, total, nxt = hs_search.search(self.data.hs_contacts.items(), body, self._types())
            results = [self._object(rid, props, wanted) for rid, props in page]
        return _search_response(results, total, nxt)

    # -- properties and owners -----------------------------------------------------------------

    def list_properties(self, req: Request) -> Response:
        with self.data.lock:
            results = list(self.data.hs_properties.values())
        return json_response(200, {"results": results}, records=len(results))

    def get_property(self, req: Request) -> Response:
        with self.data.lock:
            found = self.data.hs_properties.get(req.params["name"])
        if found is None:
            raise hs_error(
                404, "OBJECT_NOT_FOUND", f"Unable to find property {req.params['name']!r}"
            )
        return json_response(200, found, records=1)

    def create_property(self, req: Request) -> Response:
        body = req.json()
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise hs_error(
                400, "VALIDATION_ERROR", f"Property definition is missing {', '.join(missing)}"
            )
        if body["type"] not in ("string", "number", "date", "datetime", "enumeration", "bool"):
            raise hs_error(400, "VALIDATION_ERROR", f"Unknown property type {body['type']!r}")
        options = tuple(
            str(o.get("value")) for o in body.get("options") or [] if isinstance(o, dict)
        )
        if body["type"] == "enumeration" and not options:
            raise hs_error(
                400, "VALIDATION_ERROR", f"Enumeration property {body['name']!r} needs options"
            )
        with self.data.lock:
            if body["name"] in self.data.hs_properties:
                raise hs_error(
                    409,
                    "OBJECT_ALREADY_EXISTS",
                    f"A property named {body['name']!r} already exists.",
                )
            if body["groupName"] not in self.data.hs_groups:
                raise hs_error(
                    400, "VALIDATION_ERROR", f"Property group {body['groupName']!r} does not exist"
                )
            definition = property_definition(
                body["name"],
                body["label"],
                body["type"],
                body["fieldType"],
                options=options,
                group=body["groupName"],
                now=self.clock.now(),
            )
            self.data.hs_properties[body["name"]] = definition
        return json_response(201, definition, records=1)

    def list_groups(self, req: Request) -> Response:
        with self.data.lock:
            results = list(self.data.hs_groups.values())
        return json_response(200, {"results": results}, records=len(results))

    def create_group(self, req: Request) -> Response:
        body = req.json()
        if not body.get("name") or not body.get("label"):
            raise hs_error(400, "VALIDATION_ERROR", "A property group needs name and label")
        with self.data.lock:
            if body["name"] in self.data.hs_groups:
                raise hs_error(
                    409, "OBJECT_ALREADY_EXISTS", f"A group named {body['name']!r} already exists."
                )
            group = {
                "name": body["name"],
                "label": body["label"],
                "displayOrder": int(body.get("displayOrder", -1)),
                "archived": False,
            }
            self.data.hs_groups[body["name"]] = group
        return json_response(201, group, records=1)

    def owners(self, req: Request) -> Response:
        email = (req.arg("email") or "").lower()
        limit = _int_arg(req, "limit", 100, 1, 500)
        after = _int_arg(req, "after", 0, 0, None)
        with self.data.lock:
            owners = [
                o for o in self.data.hs_owners.values() if not email or o["email"].lower() == email
            ]
        page = owners[after : after + limit]
        payload: dict[str, Any] = {"results": page}
        if after + limit < len(owners):
            payload["paging"] = {"next": {"after": str(after + limit)}}
        return json_response(200, payload, records=len(page))

    # -- tasks ---------------------------------------------------------------------------------

    def _new_task(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("properties"), dict):
            raise hs_error(400, "VALIDATION_ERROR", "a task needs properties")
        clean: dict[str, str] = {}
        for name, value in item["properties"].items():
            if name not in TASK_TYPES or name in READ_ONLY:
                raise invalid_property(
                    name, "PROPERTY_DOESNT_EXIST", f"Property {name!r} does not exist"
                )
            try:
                clean[name] = normalize(TASK_TYPES[name], list(TASK_OPTIONS.get(name, ())), value)
            except ValueError as exc:
                raise hs_error(400, "VALIDATION_ERROR", f"Property {name!r}: {exc}") from None
        if not clean.get("hs_timestamp"):
            raise hs_error(400, "VALIDATION_ERROR", "Property hs_timestamp is required for tasks")
        contacts = self._task_contacts(item.get("associations") or [])
        now = hs_time(self.clock.now())
        tid = self.data.new_hs_id("task")
        clean.update({"hs_object_id": tid, "hs_createdate": now, "hs_lastmodifieddate": now})
        clean.setdefault("hs_task_status", "NOT_STARTED")
        self.data.hs_tasks[tid] = clean
        self.data.hs_task_contacts[tid] = contacts
        self.stats.task_created("hubspot", task_key(clean.get("hs_task_body")))
        return self._object(tid, clean, list(clean), "hs_createdate", "hs_lastmodifieddate")

    def _task_contacts(self, associations: Any) -> list[str]:
        contacts = []
        for assoc in associations if isinstance(associations, list) else []:
            target = str((assoc.get("to") or {}).get("id", "")) if isinstance(assoc, dict) else ""
            types = assoc.get("types") or [] if isinstance(assoc, dict) else []
            if not any(
                isinstance(t, dict)
                and t.get("associationTypeId") == CONTACT_ASSOCIATION
                and t.get("associationCategory") == "HUBSPOT_DEFINED"
                for t in types
            ):
                raise hs_error(
                    400,
                    "VALIDATION_ERROR",
                    "association types must include HUBSPOT_DEFINED "
                    f"{CONTACT_ASSOCIATION} (task to contact)",
                )
            if target not in self.data.hs_contacts:
                raise hs_error(
                    400, "VALIDATION_ERROR", f"association target contact {target} does not exist"
                )
            contacts.append(target)
        return contacts

    def create_task(self, req: Request) -> Response:
        with self.data.lock:
            return json_response(201, self._new_task(req.json()), records=1)

    def batch_create_tasks(self, req: Request) -> Response:
        inputs = _inputs(req.json())
        results, errors = [], []
        with self.data.lock:
            for index, item in enumerate(inputs):
                try:
                    if self.faults.chance(self.faults.faults.record_failure_rate):
                        self.stats.error_injected("hubspot")
                        raise hs_error(
                            409,
                            "CONFLICT",
                            "Another request for this object is in progress; try again later.",
                        )
                    results.append(self._new_task(item))
                except ApiError as exc:
                    errors.append(
                        _batch_error(
                            exc.body["category"], exc.body["message"], [], {"index": str(index)}
                        )
                    )
        return self._batch_response(results, errors, ok_status=201)

    def get_task(self, req: Request) -> Response:
        wanted = self._wanted(req.query.get("properties"), TASK_DEFAULT_PROPS)
        with self.data.lock:
            props = self.data.hs_tasks.get(req.params["id"])
            if props is None:
                raise hs_error(404, "OBJECT_NOT_FOUND", "Object not found.")
            obj = self._object(
                req.params["id"], props, wanted, "hs_createdate", "hs_lastmodifieddate"
            )
        return json_response(200, obj, records=1)

    def search_tasks(self, req: Request) -> Response:
        body = req.json()
        wanted = self._wanted(body.get("properties"), TASK_DEFAULT_PROPS)
        types = {**TASK_TYPES, "associations.contact": "string"}
        with self.data.lock:
            items = (
                (
                    tid,
                    {
                        **p,
                        "associations.contact": ";".join(self.data.hs_task_contacts.get(tid, [])),
                    },
                )
                for tid, p in self.data.hs_tasks.items()
            )
            page, total, nxt = hs_search.search(items, body, types)
            results = [
                self._object(t, p, wanted, "hs_createdate", "hs_lastmodifieddate") for t, p in page
            ]
        return _search_response(results, total, nxt)

    # -- events --------------------------------------------------------------------------------

    def events(self, req: Request) -> Response:
        if (req.arg("objectType") or "contact") not in ("contact", "contacts", "0-1"):
            raise hs_search.validation_error("objectType must be contact")
        event_type = req.arg("eventType")
        limit = _int_arg(req, "limit", 100, 1, 100)
        start_key = (
            (_time_ms(req.arg("occurredAfter")), 1 << 62)
            if req.arg("occurredAfter")
            else (-(1 << 62), 0)
        )
        cursor = req.arg("after")
        if cursor:
            try:
                ms, seq = (int(x) for x in cursor.split("-"))
            except ValueError:
                raise hs_search.validation_error(f"invalid paging cursor {cursor!r}") from None
            start_key = max(start_key, (ms, seq))
        before = _time_ms(req.arg("occurredBefore")) if req.arg("occurredBefore") else None
        object_id = req.arg("objectId")
        results: list[dict[str, Any]] = []
        last: tuple[int, int] | None = None
        with self.data.lock:
            events = self.data.hs_events
            pos = bisect.bisect_right(events, start_key, key=lambda e: (e[0], e[1]))
            while pos < len(events) and len(results) <= limit:
                ms, seq, cid, etype, props = events[pos]
                pos += 1
                if before is not None and ms >= before:
                    break
                if (event_type and etype != event_type) or (object_id and cid != object_id):
                    continue
                if len(results) == limit:
                    results.append({})  # marker: there is at least one more
                    break
                results.append(
                    {
                        "occurredAt": hs_time(
                            datetime.fromtimestamp(ms / 1000, self.clock.now().tzinfo)
                        ),
                        "eventType": etype,
                        "id": f"{ms}-{seq}",
                        "objectId": cid,
                        "objectType": "contact",
                        "properties": props,
                    }
                )
                last = (ms, seq)
        payload: dict[str, Any] = {"results": [r for r in results if r]}
        if len(results) > limit and last is not None:
            payload["paging"] = {"next": {"after": f"{last[0]}-{last[1]}"}}
        return json_response(200, payload, records=len(payload["results"]))


def _time_ms(text: str | None) -> int:
    try:
        iso = normalize_time(text or "")
    except ValueError as exc:
        raise hs_search.validation_error(str(exc)) from None
    from leadsync.sandbox.store import parse_time

    return int(parse_time(iso).timestamp() * 1000)


def _int_arg(req: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = req.arg(name)
    try:
        value = int(raw) if raw not in (None, "") else default
    except ValueError:
        raise hs_search.validation_error(f"{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        raise hs_search.validation_error(f"{name} must be between {low} and {high}, got {value}")
    return value


def _inputs(body: Any) -> list[Any]:
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list):
        raise hs_error(400, "VALIDATION_ERROR", "the request body needs an inputs array")
    if len(inputs) > BATCH_LIMIT:
        raise hs_error(
            400,
            "VALIDATION_ERROR",
            f"Batch size {len(inputs)} exceeds the limit of {BATCH_LIMIT} inputs",
        )
    return inputs


def _batch_error(
    category: str, message: str, ids: list[str], extra: dict[str, str] | None = None
) -> dict[str, Any]:
    context: dict[str, list[str]] = {"ids": ids}
    for key, value in (extra or {}).items():
        context[key] = [str(value)]
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }


def _search_response(results: list[dict[str, Any]], total: int, nxt: int | None) -> Response:
    payload: dict[str, Any] = {"total": total, "results": results}
    if nxt is not None:
        payload["paging"] = {"next": {"after": str(nxt)}}
    return json_response(200, payload, records=len(results))
