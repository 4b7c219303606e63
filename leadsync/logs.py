"""Structured logging: one JSON object per line, ids not people, never a secret.

Every record passes a redaction filter that masks email addresses (also URL-encoded, as in a
SOQL query string), bearer tokens, session ids and `password=`-style pairs in the message and in
`extra=` values, so an SDK exception text that carries a response body cannot leak record data or
credentials (RELIABILITY.md §11).

Third-party loggers are covered too: the filter is put on the root logger's handlers (Celery's,
when the worker runs), and the HTTP stacks' loggers are held at INFO or above, because at DEBUG
the HubSpot SDK logs whole response bodies (names included, which no pattern can mask) and
urllib3 logs request URLs (SOQL with emails in them).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

# plain addresses, and URL-encoded ones (`%40`; there `+` and `%` are separators, not the name).
# Not the user part of a URL (`redis://:**@127.0.0.1:6392/7`, `scheme://user@host`): a local
# part right after `:` or `/` is a URL's credentials (masked by _URL_PASSWORD), not an email;
# and a domain must end in a label that starts with a letter (no IP addresses).
_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]"
_EMAIL = re.compile(rf"(?:(?<![:/])(?<!{_LOCAL}){_LOCAL}+@|[\w.-]+%40)"
                    r"(?:[\w-]+\.)+[^\W\d_][\w-]*")
# the password of `scheme://user:password@host` (already-masked `**` passwords are kept)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s\[\]]*:)(?!\*+@)[^@/\s\[\]]+(?=@)",
                           re.I)
# Loggers whose DEBUG output carries record data: request URLs and response bodies.
QUIET_LOGGERS = ("urllib3", "requests", "hubspot", "simple_salesforce")
# each keeps its group 1 (the label) and masks what follows it
_SECRETS = [
    re.compile(r"(?i)((?:bearer|oauth)\s+)[\w.~+/=!-]+"),
    re.compile(r"(?i)\b(pat-[a-z0-9]{2,}-)[\w-]+"),
    re.compile(r"(?i)([\"']?(?:password|passwd|secret|client_secret|token|access_token|"
               r"security_token|session_?id|sessionId|assertion|hapikey|authorization)[\"']?"
               r"\s*[:=]\s*[\"']?)[^\s,\"'&<}]+"),
    re.compile(r"(?i)(<(?:\w+:)?(?:password|sessionId|username)>)[^<]+"),
    re.compile(r"\b(00D\w{12,15}!)[\w.]+"),  # Salesforce session ids (the org id part stays)
]
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    """`text` with emails, tokens, session ids and passwords masked (the one set of patterns;
    `leadsync.connectors.http.redact` also cuts it to a length)."""
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + "<redacted>", text)
    text = _EMAIL.sub("<email>", text)
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: m.group(1) + "<redacted>", text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record comes (a live status line on the
    terminal swaps it for a proxy that keeps log lines above the status)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns it
        pass


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Install the JSON handler on the `leadsync` logger (idempotent), put the redacting filter
    on the root logger's handlers, and keep the HTTP stacks' loggers at INFO or above."""
    logger = logging.getLogger("leadsync")
    for handler in list(logger.handlers):
        if getattr(handler, "_leadsync", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    handler._leadsync = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    for root_handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in root_handler.filters):
            root_handler.addFilter(RedactingFilter())
    for name in QUIET_LOGGERS:
        third_party = logging.getLogger(name)
        if third_party.getEffectiveLevel() < logging.INFO:
            third_party.setLevel(logging.INFO)


class _Held(logging.Handler):
    """Keeps records (up to a limit) to emit later; counts what it had to drop."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.records: list[logging.LogRecord] = []
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < self.limit:
            self.records.append(record)
        else:
            self.dropped += 1


@contextmanager
def held_logs(active: bool, limit: int = 2000) -> Iterator[None]:
    """While `active`, hold leadsync's log lines back and write them when the block ends, so
    none land inside a live status line, a progress bar or the tables printed after it (a
    person reading a terminal); with `active` False, nothing changes."""
    logger = logging.getLogger("leadsync")
    ours = [h for h in logger.handlers if getattr(h, "_leadsync", False)]
    if not active or not ours:
        yield
        return
    held = _Held(limit)
    held.setLevel(logging.NOTSET)
    for handler in ours:
        logger.removeHandler(handler)
    logger.addHandler(held)
    try:
        yield
    finally:
        logger.removeHandler(held)
        for handler in ours:
            logger.addHandler(handler)
        for record in held.records:
            for handler in ours:
                if record.levelno >= handler.level:
                    handler.handle(record)
        if held.dropped:
            logger.warning("log lines dropped while output was live",
                           extra={"dropped": held.dropped})
