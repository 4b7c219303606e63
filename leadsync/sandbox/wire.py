"""Request and response values passed between the HTTP plumbing and the vendor handlers.

Handlers are plain functions `(Request) -> Response`; keeping HTTP parsing out of them lets the
HubSpot and Salesforce modules read like the vendors' API documentation.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """Raised by handlers to answer with a vendor-shaped error body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass(slots=True)
class Request:
    method: str
    path: str  # without query string, trailing slash removed
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # path parameters from the route

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        """The JSON body; a malformed body is the vendor's 400, not a server crash."""
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(
                400,
                {
                    "status": "error",
                    "message": f"Invalid JSON body: {exc}",
                    "category": "VALIDATION_ERROR",
                    "correlationId": correlation_id(),
                },
            ) from None


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    records: int = 0  # how many records the body returns, for stats


@dataclass(frozen=True, slots=True)
class Dropped:
    """No reply: the connection is closed (FIN) or, with `reset`, aborted (RST)."""

    reset: bool = False


def json_response(
    status: int, payload: Any, records: int = 0, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    out = {"Content-Type": "application/json;charset=UTF-8"}
    out.update(headers or {})
    return Response(status, body, out, records)


def correlation_id() -> str:
    return str(uuid.uuid4())
