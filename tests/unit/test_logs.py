"""Structured logs carry ids, never secrets, emails or names."""

from __future__ import annotations

import io
import json
import logging

from leadsync.logs import configure_logging, redact


def test_redact_masks_emails_tokens_and_session_ids() -> None:
    text = ("Authorization: Bearer pat-na1-abc123 user=taro.yamada@example.co.jp "
            "password=hunter2 <sessionId>00Dxx0000001gPL!AQ4AQ.secret</sessionId> "
            "security_token: XYZ123")
    out = redact(text)
    for secret in ("pat-na1-abc123", "taro.yamada@example.co.jp", "hunter2",
                   "00Dxx0000001gPL!AQ4AQ.secret", "XYZ123"):
        assert secret not in out


def test_json_lines_with_extra_ids_and_redacted_exceptions() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    log = logging.getLogger("leadsync.test")
    try:
        raise RuntimeError('Response body {"email": "rep@corp.example", "token": "s3cr3t"}')
    except RuntimeError:
        log.exception("write failed", extra={"record": "hubspot:contact:1",
                                             "detail": "owner boss@corp.example"})
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["msg"] == "write failed" and line["record"] == "hubspot:contact:1"
    dump = json.dumps(line)
    assert "rep@corp.example" not in dump and "boss@corp.example" not in dump
    assert "s3cr3t" not in dump
    assert "RuntimeError" in line["exc"]
