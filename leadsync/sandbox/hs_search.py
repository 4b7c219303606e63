"""HubSpot CRM search: filterGroups (OR of ANDed filters), one sort, `limit` <= 200 and the
10,000-result window. Datetime filters accept epoch ms and compare against stored ISO text,
which sorts chronologically, so values are converted once per query, not once per record."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable
from typing import Any

from leadsync.sandbox.hs_schema import normalize_time
from leadsync.sandbox.wire import ApiError, correlation_id

MAX_LIMIT = 200
RESULT_WINDOW = 10_000
Predicate = Callable[[dict[str, str]], bool]
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def validation_error(message: str) -> ApiError:
    return ApiError(
        400,
        {
            "status": "error",
            "message": message,
            "correlationId": correlation_id(),
            "category": "VALIDATION_ERROR",
        },
    )


def _coerce(type_: str, value: Any) -> Any:
    text = str(value)
    if type_ in ("datetime", "date"):
        try:
            return normalize_time(text, date_only=type_ == "date")
        except ValueError as exc:
            raise validation_error(f"Invalid filter value: {exc}") from None
    if type_ == "number":
        try:
            return float(text)
        except ValueError:
            raise validation_error(f"Invalid number filter value {text[:40]!r}") from None
    return text.lower()


def _stored(type_: str, raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    if type_ == "number":
        try:
            return float(raw)
        except ValueError:
            return None
    if type_ in ("datetime", "date"):
        return raw
    return raw.lower()


def compile_filter(spec: Any, types: dict[str, str]) -> Predicate:  # noqa: PLR0911 - one per operator
    """One filter `{propertyName, operator, value|values|highValue}` -> predicate."""
    if not isinstance(spec, dict) or not spec.get("propertyName") or not spec.get("operator"):
        raise validation_error("each filter needs propertyName and operator")
    name, op = str(spec["propertyName"]), str(spec["operator"]).upper()
    if name not in types:
        raise validation_error(f"There was a problem with the request. Unknown property {name!r}")
    type_ = types[name]
    if op == "HAS_PROPERTY":
        return lambda p: p.get(name) not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return lambda p: p.get(name) in (None, "")
    if op in ("IN", "NOT_IN"):
        wanted = {_coerce(type_, v) for v in spec.get("values") or []}
        if op == "IN":
            return lambda p: _stored(type_, p.get(name)) in wanted
        return lambda p: _stored(type_, p.get(name)) not in wanted
    if "value" not in spec:
        raise validation_error(f"filter on {name} with {op} needs a value")
    value = _coerce(type_, spec["value"])
    if op == "CONTAINS_TOKEN":
        token = str(value).strip("*").lower()
        return lambda p: token in (p.get(name) or "").lower()
    if op == "NOT_CONTAINS_TOKEN":
        token = str(value).strip("*").lower()
        return lambda p: token not in (p.get(name) or "").lower()
    if op == "BETWEEN":
        high = _coerce(type_, spec.get("highValue"))
        return lambda p: (
            _cmp(_stored(type_, p.get(name)), ">=", value)
            and _cmp(_stored(type_, p.get(name)), "<=", high)
        )
    if op not in ("EQ", "NEQ", "GT", "GTE", "LT", "LTE"):
        raise validation_error(f"Unsupported filter operator {op!r}")
    symbol = {"EQ": "==", "NEQ": "!=", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<="}[op]
    if type_ in ("datetime", "date") and op != "NEQ":
        # stored ISO text sorts chronologically; a missing value must fail every operator here
        compare, missing = _OPS[symbol], ("\uffff" if op in ("LT", "LTE") else "")
        return lambda p: bool(compare(p.get(name) or missing, value))
    return lambda p: _cmp(_stored(type_, p.get(name)), symbol, value)


def _cmp(actual: Any, symbol: str, expected: Any) -> bool:
    if actual is None:
        return symbol == "!="
    try:
        return bool(_OPS[symbol](actual, expected))
    except TypeError:
        return False


def compile_groups(groups: Any, types: dict[str, str]) -> Predicate:
    if not groups:
        return lambda p: True
    if not isinstance(groups, list) or len(groups) > 5:
        raise validation_error("filterGroups must be a list of at most 5 groups")
    compiled = []
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list) or len(filters) > 6:
            raise validation_error("each filter group needs a filters list of at most 6 filters")
        compiled.append([compile_filter(f, types) for f in filters])
    return lambda p: any(all(f(p) for f in group) for group in compiled)


def parse_sort(sorts: Any) -> tuple[str, bool] | None:
    """First sort as (property, descending); accepts objects, JSON strings and `-prop`."""
    if not sorts:
        return None
    first = sorts[0]
    if isinstance(first, str):
        try:
            first = json.loads(first)
        except json.JSONDecodeError:
            return (first[1:], True) if first.startswith("-") else (first, False)
    if not isinstance(first, dict) or "propertyName" not in first:
        raise validation_error("sorts must name a propertyName")
    return str(first["propertyName"]), str(
        first.get("direction", "ASCENDING")
    ).upper() == "DESCENDING"


def search(
    items: Iterable[tuple[str, dict[str, str]]], body: dict[str, Any], types: dict[str, str]
) -> tuple[list[tuple[str, dict[str, str]]], int, int | None]:
    """Run a search request body; return (page of (id, properties), total, next offset)."""
    limit = body.get("limit")
    limit = 10 if limit is None else limit
    try:
        limit = int(limit)
        after = int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise validation_error("limit and after must be integers") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise validation_error(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if after + limit > RESULT_WINDOW:
        raise validation_error(
            f"Paging past {RESULT_WINDOW} results is not supported (after={after}, limit={limit}); "
            "narrow the query, e.g. with a GTE filter on the last value seen"
        )
    predicate = compile_groups(body.get("filterGroups"), types)
    hits = [(rid, props) for rid, props in items if predicate(props)]
    sort = parse_sort(body.get("sorts"))
    if sort is not None:
        name, descending = sort
        type_ = types.get(name, "string")
        present = [h for h in hits if _stored(type_, h[1].get(name)) is not None]
        missing = [h for h in hits if _stored(type_, h[1].get(name)) is None]
        present.sort(key=lambda h: (_stored(type_, h[1].get(name)), int(h[0])), reverse=descending)
        hits = present + missing
    page = hits[after : after + limit]
    next_offset = after + limit if after + limit < len(hits) else None
    return page, len(hits), next_offset
