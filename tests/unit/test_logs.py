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


def test_redact_masks_url_encoded_emails_in_query_strings() -> None:
    url = ("GET /services/data/v59.0/query/?q=SELECT+Id+FROM+Lead+WHERE+Email+IN+"
           "%28%27taro.yamada%40example.co.jp%27%29 HTTP/1.1")
    out = redact(url)
    assert "taro.yamada" not in out and "example.co.jp" not in out
    assert out.startswith("GET /services/data/v59.0/query/?q=SELECT+Id+FROM+Lead")


def test_third_party_records_through_root_handlers_are_redacted_and_bodies_kept_out() -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    saved_root = root.level
    saved = {name: logging.getLogger(name).level
             for name in ("urllib3", "requests", "hubspot", "simple_salesforce")}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # as `celery worker -l debug` leaves it
    try:
        configure_logging("INFO", stream=io.StringIO())
        logging.getLogger("hubspot.crm.contacts.rest").debug(
            "response body: %s", '{"firstname": "Taro", "lastname": "Yamada"}')
        logging.getLogger("urllib3.connectionpool").debug(
            '"GET /query/?q=WHERE+Email+%%3D+%%27a%%40b.example%%27 HTTP/1.1" 200 %s', 12)
        logging.getLogger("simple_salesforce.api").warning(
            "retrying for owner %s", "boss@corp.example")
        logging.getLogger("celery.worker").debug("still shown at debug")
        out = stream.getvalue()
        assert "Yamada" not in out and "a%40b.example" not in out  # DEBUG bodies/URLs held back
        assert "boss@corp.example" not in out and "retrying for owner <email>" in out
        assert "still shown at debug" in out  # other loggers keep the operator's level
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_root)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def test_redact_keeps_url_hosts_and_masks_url_passwords() -> None:
    # Celery prints the broker as redis://:**@host: the mask must not eat the host
    assert redact("Connected to redis://:**@127.0.0.1:6392/7") == \
        "Connected to redis://:**@127.0.0.1:6392/7"
    assert redact("broker redis://:s3cr3t@redis.internal:6379/0 down") == \
        "broker redis://:<redacted>@redis.internal:6379/0 down"
    assert redact("amqp://guest:guest@rabbit.example:5672//") == \
        "amqp://guest:<redacted>@rabbit.example:5672//"
    assert redact("expected redis://[:password@]host:port/db") == \
        "expected redis://[:password@]host:port/db"
    assert redact("owner ops@corp.example at 10.0.0.1") == "owner <email> at 10.0.0.1"
    assert redact("pw@10.0.0.1") == "pw@10.0.0.1"  # an IP address is not a mail domain


def test_held_logs_wait_until_the_block_ends() -> None:
    from leadsync.logs import held_logs

    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    log = logging.getLogger("leadsync.test")
    with held_logs(True):
        log.warning("during the live output", extra={"record": "hubspot:contact:7"})
        log.debug("below the level")
        assert stream.getvalue() == ""
        print_marker = "tables printed"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["msg"], line["record"]) for line in lines] == [
        ("during the live output", "hubspot:contact:7")]
    assert print_marker
    with held_logs(False):
        log.warning("not held")
        assert "not held" in stream.getvalue()


def test_held_logs_count_what_they_drop() -> None:
    from leadsync.logs import held_logs

    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    log = logging.getLogger("leadsync.test")
    with held_logs(True, limit=2):
        for i in range(5):
            log.info("line", extra={"i": i})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line.get("i") for line in lines] == [0, 1, None]
    assert lines[-1]["msg"] == "log lines dropped while output was live"
    assert lines[-1]["dropped"] == 3
