"""Shared pieces of the HubSpot handlers: error bodies, argument parsing, object shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from leadsync.sandbox import hs_search
from leadsync.sandbox.faults import FaultInjector
from leadsync.sandbox.hs_schema import (
    normalize_time,
)
from leadsync.sandbox.store import Clock, SandboxData, Stats, hs_time
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


class HsBase:
    """State and helpers every HubSpot handler group uses."""

    data: SandboxData
    clock: Clock
    stats: Stats
    faults: FaultInjector

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


    def _batch_update(self, req: Request,
                      apply: Callable[[str, dict[str, Any], str], dict[str, Any]], *,
                      conflicts: bool = False) -> Response:
        """`POST .../batch/update` for any object: each input (id and properties) applied by
        `apply(id, properties, stamp)` under the store's lock; a refused input is an error row
        (207), the rest apply. `conflicts`: the `record_failure_rate` fault refuses an input
        as HubSpot does when another update holds the object (409 CONFLICT)."""
        inputs = batch_inputs(req.json())
        results, errors = [], []
        stamp = hs_time(self.clock.now())
        with self.data.lock:
            for item in inputs:
                rid = str(item.get("id", "")) if isinstance(item, dict) else ""
                props_in = item.get("properties") if isinstance(item, dict) else None
                try:
                    if not isinstance(props_in, dict):
                        raise hs_error(400, "VALIDATION_ERROR",
                                       "each input needs id and properties")
                    if conflicts and self.faults.chance(self.faults.faults.record_failure_rate):
                        self.stats.error_injected("hubspot")
                        raise hs_error(409, "CONFLICT", "Another update to this object is in "
                                       "progress; try again later.")
                    results.append(apply(rid, props_in, stamp))
                except ApiError as exc:
                    errors.append(batch_error(exc.body["category"], exc.body["message"], [rid]))
        return self._batch_response(results, errors)


def time_ms(text: str | None) -> int:
    try:
        iso = normalize_time(text or "")
    except ValueError as exc:
        raise hs_search.validation_error(str(exc)) from None
    from leadsync.sandbox.store import parse_time

    return int(parse_time(iso).timestamp() * 1000)


def int_arg(req: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = req.arg(name)
    try:
        value = int(raw) if raw not in (None, "") else default
    except ValueError:
        raise hs_search.validation_error(f"{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        raise hs_search.validation_error(f"{name} must be between {low} and {high}, got {value}")
    return value


def bool_arg(req: Request, name: str, default: bool) -> bool:
    """A boolean query parameter as HubSpot's spec serialises it: exactly "true" or "false".
    HubSpot's API is case-sensitive here (a Python SDK's `archived=False` arrives as "False";
    PHP clients sending "1" were refused), so anything else is the vendor's 400."""
    raw = req.arg(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise hs_search.validation_error(
            f"Unable to parse query parameter {name!r}: {raw!r} is not a valid boolean "
            "(expected true or false)"
        )
    return raw == "true"


def batch_inputs(body: Any) -> list[Any]:
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


def batch_error(
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


def search_response(results: list[dict[str, Any]], total: int, nxt: int | None) -> Response:
    payload: dict[str, Any] = {"total": total, "results": results}
    if nxt is not None:
        payload["paging"] = {"next": {"after": str(nxt)}}
    return json_response(200, payload, records=len(results))
