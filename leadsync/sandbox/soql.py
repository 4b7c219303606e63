"""The SOQL subset leadsync sends: tokenizer, recursive-descent parser and row evaluator.

`SELECT f[, f] | COUNT() FROM O [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...]
[LIMIT n]` where cond combines `= != <> > >= < <= IN NOT IN LIKE` with AND/OR/NOT and parentheses
over strings, numbers, true/false/null, ISO dates and datetimes and date literals (TODAY,
YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n, N_DAYS_AGO:n). Datetimes are compared as
Salesforce-formatted UTC text, which sorts chronologically, so no value is parsed per row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from leadsync.sandbox.store import parse_time, sf_time


class SoqlError(ValueError):
    """A query the sandbox cannot parse (Salesforce: MALFORMED_QUERY) or that names an unknown
    field (INVALID_FIELD); `code` carries the Salesforce error code."""

    def __init__(self, message: str, code: str = "MALFORMED_QUERY") -> None:
        super().__init__(message)
        self.code = code


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<dt>\d{4}-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2}))?)"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>!=|<>|<=|>=|=|<|>|\(|\)|,)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*(?::\d+)?))"
)
_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "TRUE",
    "FALSE",
    "NULL",
    "COUNT",
}
_DATE_LITERAL = re.compile(
    r"^(TODAY|YESTERDAY|TOMORROW|LAST_N_DAYS:\d+|NEXT_N_DAYS:\d+|N_DAYS_AGO:\d+)$"
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # str | dt | num | op | word | kw
    text: str


@dataclass(frozen=True, slots=True)
class DateRange:
    """A date literal: the half-open UTC range [start, end) it denotes."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Comparison:
    field: str
    op: str  # = != > >= < <= IN NOTIN LIKE
    value: Any  # str | float | bool | None | DateRange | tuple
    # IN/NOT IN over plain strings (ids, picklist values): lower-cased set for O(1) membership
    lookup: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # AND | OR | NOT
    parts: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Query:
    fields: tuple[str, ...]
    sobject: str
    where: Any | None
    order: tuple[tuple[str, bool, bool], ...]  # (field, descending, nulls_last)
    limit: int | None
    count: bool


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise SoqlError(f"unexpected token at position {pos}: {text[pos : pos + 20]!r}")
        kind = match.lastgroup or "word"
        value = match.group(kind)
        if kind == "word" and value.upper() in _KEYWORDS:
            tokens.append(Token("kw", value.upper()))
        else:
            tokens.append(Token(kind, value))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token], today: date) -> None:
        self.tokens = tokens
        self.pos = 0
        self.today = today

    def peek(self, *texts: str) -> bool:
        if self.pos >= len(self.tokens):
            return False
        tok = self.tokens[self.pos]
        return tok.kind in ("kw", "op") and tok.text in texts

    def take(self) -> Token:
        if self.pos >= len(self.tokens):
            raise SoqlError("unexpected end of query")
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text.upper() != text:
            raise SoqlError(f"expected {text} but found {tok.text!r}")

    def field(self) -> str:
        tok = self.take()
        if tok.kind != "word":
            raise SoqlError(f"expected a field name but found {tok.text!r}")
        return tok.text

    def query(self) -> Query:
        self.expect("SELECT")
        count = False
        fields: list[str] = []
        if self.peek("COUNT"):
            self.take()
            self.expect("(")
            self.expect(")")
            count = True
        else:
            fields.append(self.field())
            while self.peek(","):
                self.take()
                fields.append(self.field())
        self.expect("FROM")
        sobject = self.field()
        where = None
        if self.peek("WHERE"):
            self.take()
            where = self.disjunction()
        order: list[tuple[str, bool, bool]] = []
        if self.peek("ORDER"):
            self.take()
            self.expect("BY")
            order.append(self.order_item())
            while self.peek(","):
                self.take()
                order.append(self.order_item())
        limit = None
        if self.peek("LIMIT"):
            self.take()
            tok = self.take()
            if tok.kind != "num" or not tok.text.isdigit():
                raise SoqlError(f"LIMIT needs a whole number, found {tok.text!r}")
            limit = int(tok.text)
        if self.pos != len(self.tokens):
            raise SoqlError(f"unexpected token {self.tokens[self.pos].text!r}")
        return Query(tuple(fields), sobject, where, tuple(order), limit, count)

    def order_item(self) -> tuple[str, bool, bool]:
        name = self.field()
        descending = False
        if self.peek("ASC", "DESC"):
            descending = self.take().text == "DESC"
        nulls_last = descending
        if self.peek("NULLS"):
            self.take()
            nulls_last = self.take().text == "LAST"
        return name, descending, nulls_last

    def disjunction(self) -> Any:
        parts = [self.conjunction()]
        while self.peek("OR"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else BoolOp("OR", tuple(parts))

    def conjunction(self) -> Any:
        parts = [self.unary()]
        while self.peek("AND"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else BoolOp("AND", tuple(parts))

    def unary(self) -> Any:
        if self.peek("NOT"):
            self.take()
            return BoolOp("NOT", (self.unary(),))
        if self.peek("("):
            self.take()
            inner = self.disjunction()
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        name = self.field()
        tok = self.take()
        if tok.text == "NOT":
            self.expect("IN")
            values = self.value_list()
            return Comparison(name, "NOTIN", values, _string_set(values))
        if tok.text == "IN":
            values = self.value_list()
            return Comparison(name, "IN", values, _string_set(values))
        if tok.text == "LIKE":
            pattern = self.literal()
            if not isinstance(pattern, str):
                raise SoqlError("LIKE needs a string pattern")
            regex = "".join(
                ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern
            )
            return Comparison(name, "LIKE", re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL))
        if tok.kind != "op" or tok.text in ("(", ")", ","):
            raise SoqlError(f"expected an operator after {name} but found {tok.text!r}")
        return Comparison(name, "!=" if tok.text == "<>" else tok.text, self.literal())

    def value_list(self) -> tuple[Any, ...]:
        self.expect("(")
        values = [self.literal()]
        while self.peek(","):
            self.take()
            values.append(self.literal())
        self.expect(")")
        return tuple(values)

    def literal(self) -> Any:
        tok = self.take()
        if tok.kind == "str":
            return re.sub(r"\\(.)", r"\1", tok.text[1:-1])
        if tok.kind == "num":
            return float(tok.text)
        if tok.kind == "dt":
            return tok.text if len(tok.text) == 10 else sf_time(parse_time(tok.text))
        if tok.kind == "kw" and tok.text in ("TRUE", "FALSE", "NULL"):
            return {"TRUE": True, "FALSE": False, "NULL": None}[tok.text]
        if tok.kind == "word" and _DATE_LITERAL.match(tok.text.upper()):
            return self.date_range(tok.text.upper())
        raise SoqlError(f"expected a value but found {tok.text!r}")

    def date_range(self, literal: str) -> DateRange:
        name, _, arg = literal.partition(":")
        n = int(arg) if arg else 0
        day = datetime(self.today.year, self.today.month, self.today.day, tzinfo=UTC)
        one = timedelta(days=1)
        ranges = {
            "TODAY": (day, day + one),
            "YESTERDAY": (day - one, day),
            "TOMORROW": (day + one, day + 2 * one),
            "LAST_N_DAYS": (day - n * one, day + one),
            "NEXT_N_DAYS": (day + one, day + (n + 1) * one),
            "N_DAYS_AGO": (day - n * one, day - (n - 1) * one),
        }
        start, end = ranges[name]
        return DateRange(start, end)


def parse(text: str, today: date) -> Query:
    """Parse a SOQL statement; date literals resolve against `today` (the sandbox clock)."""
    return _Parser(tokenize(text), today).query()


Getter = Callable[[dict[str, Any], str], Any]


def _compare(actual: Any, op: str, expected: Any) -> bool:  # noqa: PLR0911 - per value kind
    if isinstance(expected, DateRange):
        if actual is None:
            return op == "!="
        as_text = str(actual)
        start, end = sf_time(expected.start), sf_time(expected.end)
        if len(as_text) == 10:
            start, end = start[:10], end[:10]
        checks = {
            "=": start <= as_text < end,
            "!=": not start <= as_text < end,
            ">": as_text >= end,
            ">=": as_text >= start,
            "<": as_text < start,
            "<=": as_text < end,
        }
        return checks[op]
    if expected is None or actual is None:
        same = actual is None and expected is None
        return same if op == "=" else (not same if op == "!=" else False)
    if isinstance(expected, float) and not isinstance(actual, bool):
        try:
            actual = float(actual)
        except (TypeError, ValueError):
            return False
    elif isinstance(expected, str) and isinstance(actual, str):
        if len(actual) == 10 and len(expected) > 10 and expected[4] == "-":
            expected = expected[:10]
        elif len(expected) == 10 and len(actual) > 10 and expected[4] == "-" and actual[4] == "-":
            actual = actual[:10]
        actual, expected = actual.lower(), expected.lower()
    elif type(actual) is not type(expected):
        return op == "!="
    if op == "=":
        return bool(actual == expected)
    if op == "!=":
        return bool(actual != expected)
    ordered = {
        ">": actual > expected,
        ">=": actual >= expected,
        "<": actual < expected,
        "<=": actual <= expected,
    }
    return bool(ordered[op])


def _plain_string(value: object) -> bool:
    """A string that `_compare` would not treat as a date (those need the slow path)."""
    return isinstance(value, str) and not (len(value) >= 10 and value[4:5] == "-")


def _string_set(values: Any) -> frozenset[str] | None:
    if isinstance(values, tuple) and values and all(_plain_string(v) for v in values):
        return frozenset(v.lower() for v in values)
    return None


def matches(node: Any, row: dict[str, Any], get: Getter) -> bool:
    """Evaluate a WHERE tree against one record."""
    if isinstance(node, BoolOp):
        if node.op == "AND":
            return all(matches(p, row, get) for p in node.parts)
        if node.op == "OR":
            return any(matches(p, row, get) for p in node.parts)
        return not matches(node.parts[0], row, get)
    value = get(row, node.field)
    if node.op == "LIKE":
        return value is not None and bool(node.value.match(str(value)))
    if node.op in ("IN", "NOTIN"):
        if node.lookup is not None and (value is None or _plain_string(value)):
            found = value is not None and value.lower() in node.lookup
        else:
            found = any(_compare(value, "=", v) for v in node.value)
        return found if node.op == "IN" else (value is not None and not found)
    return _compare(value, node.op, node.value)


def where_fields(node: Any) -> list[str]:
    """Every field a WHERE tree names (for validation)."""
    if node is None:
        return []
    if isinstance(node, BoolOp):
        return [f for part in node.parts for f in where_fields(part)]
    return [node.field]


def sort_rows(
    rows: list[dict[str, Any]], order: tuple[tuple[str, bool, bool], ...], get: Getter
) -> None:
    """Sort in place by ORDER BY items (stable, last key first)."""
    for name, descending, nulls_last in reversed(order):
        present = [r for r in rows if get(r, name) is not None]
        missing = [r for r in rows if get(r, name) is None]
        present.sort(key=lambda r: _sort_key(get(r, name)), reverse=descending)
        rows[:] = present + missing if nulls_last else missing + present


def _sort_key(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value
