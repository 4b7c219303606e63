"""The condition language of the rules file (DESIGN.md §3), compiled into closures.

A condition is `{field: F, OP: V}` (one or more OPs, all must hold) or `{all: [...]}`,
`{any: [...]}`, `{not: C}`. An event's `where:` maps a property to `{OP: V}`. Compilation
happens once when the model loads; evaluation is a chain of plain closures over a facts mapping
whose strings are already lower-cased, so string comparisons are case-insensitive without
lower-casing in the hot path. `ConditionError` carries the key path at fault; the rules loader
adds the file name and rule id.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Final

Facts = Mapping[str, object]
Predicate = Callable[[object], bool]
Condition = Callable[[Facts], bool]

OPERATORS: Final[tuple[str, ...]] = (
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "matches", "exists",
)
_TRUE_WORDS: Final[frozenset[str]] = frozenset({"true", "yes", "1", "y", "on"})
_FALSE_WORDS: Final[frozenset[str]] = frozenset({"false", "no", "0", "n", "off"})


class ConditionError(ValueError):
    """A malformed condition; `key` is the dotted path of the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def normalize_fact(value: object) -> object:
    """The form conditions compare: strings lower-cased and stripped, "" as missing (None)."""
    if isinstance(value, str):
        value = value.strip().lower()
        return value or None
    return value


def as_number(value: object) -> float | None:
    """A comparable number from a fact: ints, floats and numeric strings; never bools or NaN."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.replace(",", ""))
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


def as_text(value: object) -> str | None:
    """A lower-case string form of a fact, for string operators (bools as true/false)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in _TRUE_WORDS:
            return True
        if value in _FALSE_WORDS:
            return False
    return None


def _equals(target: object) -> Predicate:
    """Equality against a rules-file literal, by the literal's type (YAML bool/number/string)."""
    if isinstance(target, bool):
        return lambda v: _as_bool(v) is target
    if isinstance(target, int | float):
        number = float(target)
        return lambda v: as_number(v) == number
    text = str(target).strip().lower()
    return lambda v: v == text if isinstance(v, str) else as_text(v) == text


def _scalar(key: str, raw: object) -> object:
    if isinstance(raw, bool | int | float | str) and not (
        isinstance(raw, float) and math.isnan(raw)
    ):
        return raw
    raise ConditionError(key, f"expected a string, number or boolean, got {type(raw).__name__}")


def _number(key: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ConditionError(key, f"expected a finite number, got {raw!r}")
    return float(raw)


def _compare(op: str, bound: float) -> Predicate:
    def check(v: object) -> bool:
        number = as_number(v)
        if number is None:
            return False
        if op == "gt":
            return number > bound
        if op == "gte":
            return number >= bound
        if op == "lt":
            return number < bound
        return number <= bound

    return check


def _op_eq(raw: object, key: str) -> Predicate:
    eq = _equals(_scalar(key, raw))
    return lambda v: v is not None and eq(v)


def _op_ne(raw: object, key: str) -> Predicate:
    eq = _equals(_scalar(key, raw))
    return lambda v: v is None or not eq(v)


def _members(raw: object, key: str) -> list[Predicate]:
    if not isinstance(raw, list | tuple) or not raw:
        raise ConditionError(key, "expected a non-empty list")
    return [_equals(_scalar(f"{key}[{i}]", item)) for i, item in enumerate(raw)]


def _op_in(raw: object, key: str) -> Predicate:
    tests = _members(raw, key)
    assert isinstance(raw, list | tuple)  # checked by _members
    if all(type(item) is str for item in raw):  # the common case: a set lookup for strings
        texts = frozenset(str(item).strip().lower() for item in raw)
        return lambda v: v in texts if isinstance(v, str) else (
            v is not None and any(t(v) for t in tests))
    return lambda v: v is not None and any(t(v) for t in tests)


def _op_not_in(raw: object, key: str) -> Predicate:
    tests = _members(raw, key)
    return lambda v: v is None or not any(t(v) for t in tests)


def _op_contains(raw: object, key: str) -> Predicate:
    if not isinstance(raw, str) or not raw:
        raise ConditionError(key, "expected a non-empty string")
    needle = raw.lower()

    def contains(v: object) -> bool:
        if isinstance(v, str):
            return needle in v
        if isinstance(v, list | tuple):
            return any(needle in (as_text(normalize_fact(x)) or "") for x in v)
        text = as_text(v)
        return text is not None and needle in text

    return contains


def _op_matches(raw: object, key: str) -> Predicate:
    if not isinstance(raw, str):
        raise ConditionError(key, "expected a regular expression string")
    try:
        pattern = re.compile(raw, re.IGNORECASE)
    except re.error as exc:
        raise ConditionError(key, f"invalid regular expression: {exc}") from None

    def matches(v: object) -> bool:
        text = as_text(v)
        return text is not None and pattern.search(text) is not None

    return matches


def _op_exists(raw: object, key: str) -> Predicate:
    if not isinstance(raw, bool):
        raise ConditionError(key, "expected true or false")
    if raw:
        return lambda v: v is not None
    return lambda v: v is None


_BUILDERS: Final[dict[str, Callable[[object, str], Predicate]]] = {
    "eq": _op_eq,
    "ne": _op_ne,
    "in": _op_in,
    "not_in": _op_not_in,
    "gt": lambda raw, key: _compare("gt", _number(key, raw)),
    "gte": lambda raw, key: _compare("gte", _number(key, raw)),
    "lt": lambda raw, key: _compare("lt", _number(key, raw)),
    "lte": lambda raw, key: _compare("lte", _number(key, raw)),
    "contains": _op_contains,
    "matches": _op_matches,
    "exists": _op_exists,
}


def compile_operator(op: str, raw: object, key: str) -> Predicate:
    """One `OP: V` into a predicate over a normalized fact (None = missing)."""
    builder = _BUILDERS.get(op)
    if builder is None:
        raise ConditionError(
            key, f"unknown operator {op!r} (expected one of {', '.join(OPERATORS)})"
        )
    return builder(raw, key)


def _text_operator(op: str, raw: object, key: str) -> Predicate:
    """Like `compile_operator`, specialised for values known to be lower-case str or None
    (event properties): the common `contains` / string `eq` skip the type dispatch."""
    general = compile_operator(op, raw, key)  # validates
    if op == "contains" and isinstance(raw, str):
        needle = raw.lower()
        return lambda v: v is not None and needle in v  # type: ignore[operator]
    if op == "eq" and isinstance(raw, str):
        text = raw.strip().lower()
        return lambda v: v == text
    return general


def compile_ops(spec: object, key: str, *, text_only: bool = False) -> Predicate:
    """A `{OP: V, ...}` mapping (all must hold) into one predicate. `text_only`: the value is
    always a lower-case string or None (event properties), which allows faster predicates."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConditionError(key, "expected a mapping of operator to value, e.g. {eq: x}")
    build = _text_operator if text_only else compile_operator
    preds = [build(str(op), raw, f"{key}.{op}") for op, raw in spec.items()]
    if len(preds) == 1:
        return preds[0]
    return lambda v: all(p(v) for p in preds)


#: `attributes.state` names no fact: an attribute is read by its bare name (`state`).
_ATTRIBUTES_PREFIX = "attributes."


def compile_condition(spec: object, key: str = "when") -> tuple[Condition, frozenset[str]]:
    """A `when:` condition into a closure over facts, plus the field names it reads."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConditionError(key, "expected a condition mapping such as {field: title, eq: x}")
    if "all" in spec or "any" in spec:
        kind = "all" if "all" in spec else "any"
        if len(spec) != 1:
            raise ConditionError(key, f"'{kind}' cannot be combined with other keys")
        items = spec[kind]
        if not isinstance(items, list) or not items:
            raise ConditionError(f"{key}.{kind}", "expected a non-empty list of conditions")
        parts = [compile_condition(c, f"{key}.{kind}[{i}]") for i, c in enumerate(items)]
        conds = [c for c, _ in parts]
        fields = frozenset().union(*(f for _, f in parts))
        if kind == "all":
            return (lambda facts: all(c(facts) for c in conds)), fields
        return (lambda facts: any(c(facts) for c in conds)), fields
    if "not" in spec:
        if len(spec) != 1:
            raise ConditionError(key, "'not' cannot be combined with other keys")
        inner, fields = compile_condition(spec["not"], f"{key}.not")
        return (lambda facts: not inner(facts)), fields
    if "field" not in spec:
        raise ConditionError(key, "missing 'field' (or all/any/not)")
    name = spec["field"]
    if not isinstance(name, str) or not name.strip():
        raise ConditionError(f"{key}.field", "expected a field name")
    ops = {k: v for k, v in spec.items() if k != "field"}
    if not ops:
        raise ConditionError(key, f"no operator for field {name!r}")
    field_name = name.strip()
    if field_name.startswith(_ATTRIBUTES_PREFIX):  # would never match: facts are bare names
        bare = field_name[len(_ATTRIBUTES_PREFIX):]
        raise ConditionError(f"{key}.field", f"{field_name[:60]!r}: attributes are read by "
                             f"their bare name (field: {bare[:40] or 'NAME'})")
    pred = compile_ops(ops, key)
    return (lambda facts: pred(facts.get(field_name))), frozenset({field_name})
