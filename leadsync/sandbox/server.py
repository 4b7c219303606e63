"""HTTP plumbing: threaded keep-alive servers on 127.0.0.1 (HubSpot plain, Salesforce TLS),
routing, fault injection, vendor-shaped errors, statistics and the `/__sandbox__` control API."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import struct
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from leadsync.sandbox.faults import FaultInjector
from leadsync.sandbox.store import Stats
from leadsync.sandbox.wire import (
    ApiError,
    Dropped,
    Request,
    Response,
    correlation_id,
    json_response,
)

log = logging.getLogger(__name__)
Route = tuple[str, re.Pattern[str], str, Callable[[Request], Response]]
CONTROL_PREFIX = "/__sandbox__"


class VendorApi(Protocol):
    routes: list[Route]


class Dispatcher:
    """Routes one port's requests: control endpoints first (never faulted), then the vendor API
    behind faults, auth and limits. `authorize(req, endpoint)` returns headers to add.

    Connection faults come in two places: `drop_rate` before the request is handled, the
    reply drop after the handler committed a write (`FaultInjector.take_reply_drop`)."""

    def __init__(
        self,
        system: str,
        api: VendorApi,
        stats: Stats,
        faults: FaultInjector,
        *,
        authorize: Callable[[Request, str], dict[str, str]],
        after: Callable[[], dict[str, str]] | None = None,
        control: Callable[[Request], Response] | None = None,
    ) -> None:
        self.system, self.api, self.stats, self.faults = system, api, stats, faults
        self.authorize = authorize
        self.after = after or dict
        self.control = control

    def dispatch(self, req: Request) -> Response | Dropped:  # noqa: PLR0911 - one per outcome
        """Answer a request, or `Dropped`: close the connection without a response."""
        if req.path.startswith(CONTROL_PREFIX) and self.control is not None:
            try:
                return self.control(req)
            except ApiError as exc:
                return json_response(exc.status, exc.body)
            except (ValueError, TypeError, KeyError) as exc:
                return json_response(400, {"error": str(exc)})
        found = self._route(req)
        if found is None:
            return self._not_found(req)
        endpoint, handler = found
        self.stats.request(self.system, endpoint)
        faults = self.faults.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if self.faults.chance(faults.drop_rate):
            self.stats.error_injected(self.system)
            return Dropped()
        if self.faults.chance(faults.error_rate):
            self.stats.error_injected(self.system)
            return self._server_error()
        extra: dict[str, str] = {}
        try:
            extra = self.authorize(req, endpoint)
            response = handler(req)
        except ApiError as exc:
            response = json_response(exc.status, exc.body, headers=exc.headers)
        except Exception:
            log.exception("sandbox handler failed", extra={"endpoint": endpoint})
            response = self._server_error()
        if response.status < 300 and self.faults.take_reply_drop(endpoint, self.system):
            # the store has committed the write; only the answer is lost
            self.stats.error_injected(self.system)
            self.stats.reply_dropped(self.system, endpoint)
            return Dropped(reset=self.faults.faults.reply_drop_style == "reset")
        response.headers.update(extra)
        response.headers.update(self.after())
        if response.records:
            self.stats.returned(self.system, endpoint, response.records)
        return response

    def _route(self, req: Request) -> tuple[str, Callable[[Request], Response]] | None:
        for method, pattern, endpoint, handler in self.api.routes:
            if method != req.method:
                continue
            match = pattern.fullmatch(req.path)
            if match:
                req.params = {k: v for k, v in match.groupdict().items() if v is not None}
                return endpoint, handler
        return None

    def _not_found(self, req: Request) -> Response:
        if self.system == "salesforce":
            return json_response(
                404,
                [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
            )
        return json_response(
            404,
            {
                "status": "error",
                "message": f"No route for {req.method} {req.path}",
                "correlationId": correlation_id(),
                "category": "OBJECT_NOT_FOUND",
            },
        )

    def _server_error(self) -> Response:
        if self.system == "salesforce":
            return json_response(
                500,
                [
                    {
                        "errorCode": "UNKNOWN_EXCEPTION",
                        "message": "An unexpected error occurred. Please try again.",
                    }
                ],
            )
        return json_response(
            503,
            {
                "status": "error",
                "message": "Service temporarily unavailable",
                "correlationId": correlation_id(),
                "category": "INTERNAL_ERROR",
            },
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    # one buffered write per response and no Nagle delay: otherwise headers and body go out in
    # separate segments and delayed ACKs add ~40 ms to every keep-alive request
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path = url.path.rstrip("/") or "/"
        req = Request(
            self.command,
            path,
            urllib.parse.parse_qs(url.query, keep_blank_values=True),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        response = self.server.dispatcher.dispatch(req)
        if isinstance(response, Dropped):
            self._drop(response.reset)
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _drop(self, reset: bool) -> None:
        """End the connection without a reply: a FIN (the client's read sees EOF, urllib3 a
        RemoteDisconnected) or, with `reset`, an RST (SO_LINGER 0: ConnectionResetError)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            if reset:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox request", extra={"request_line": format % args})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self, port: int, dispatcher: Dispatcher, context: ssl.SSLContext | None = None
    ) -> None:
        self.dispatcher = dispatcher
        self.tls = context
        super().__init__(("127.0.0.1", port), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Wrap TLS in the worker thread, so a slow handshake never blocks accept()."""
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


def serve(port: int, dispatcher: Dispatcher, context: ssl.SSLContext | None = None) -> _Server:
    """Bind 127.0.0.1:`port` (0 = any free port); the caller runs `serve_forever` in a thread."""
    return _Server(port, dispatcher, context)


def parse_json_body(req: Request) -> dict[str, Any]:
    data = json.loads(req.body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data
