"""Structured logging: one JSON object per line, ids not people, never a secret.

Every record passes a redaction filter that masks email addresses, bearer tokens, session ids
and `password=`-style pairs in the message and in `extra=` values, so an SDK exception text that
carries a response body cannot leak record data or credentials (RELIABILITY.md §11).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
_SECRETS = [
    re.compile(r"(?i)(bearer\s+)[\w.\-~+/=]+"),
    re.compile(r"(?i)\b(pat-[a-z0-9]{2,}-)[\w-]+"),
    re.compile(r"(?i)((?:password|passwd|secret|token|session_?id|sessionId|access_token|"
               r"security_token|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s,\"'&<}]+"),
    re.compile(r"(<sessionId>)[^<]+"),
    re.compile(r"\b(00D[\w]{12,15}!)[\w.]+"),  # Salesforce session ids
]
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
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


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Install the JSON handler on the `leadsync` logger (idempotent)."""
    logger = logging.getLogger("leadsync")
    for handler in list(logger.handlers):
        if getattr(handler, "_leadsync", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    handler._leadsync = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
