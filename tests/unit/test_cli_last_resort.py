"""The last resort in `leadsync.cli.main`: an error no command expected becomes one redacted
line and an exit code, with --json its outcome object; the traceback only with DEBUG."""

from __future__ import annotations

import importlib
import json

import pytest

from leadsync import cli, exitcodes
from leadsync.state import StateError

admin = importlib.import_module("leadsync.commands.admin")
sync = importlib.import_module("leadsync.commands.sync")


def boom(*_: object, **__: object) -> None:
    raise RuntimeError("boom for taro.yamada@corp.example with password=hunter2")


def test_unexpected_error_is_one_redacted_line(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LEADSYNC_LOG_LEVEL", raising=False)
    monkeypatch.setattr(admin, "checked_email", boom)
    with pytest.raises(SystemExit) as info:
        cli.main(["explain", "taro.yamada@corp.example"])
    assert info.value.code == exitcodes.FAILED_RECORDS
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("leadsync: unexpected error, a bug in leadsync (rerun with "
                   "LEADSYNC_LOG_LEVEL=DEBUG for the traceback and report it): RuntimeError: "
                   "boom for <email> with password=<redacted>\n")


def test_debug_adds_the_redacted_traceback(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEADSYNC_LOG_LEVEL", "debug")
    monkeypatch.setattr(admin, "checked_email", boom)
    with pytest.raises(SystemExit):
        cli.main(["explain", "taro.yamada@corp.example"])
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "hunter2" not in err and "taro.yamada" not in err


def test_json_object_even_for_an_unexpected_error(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LEADSYNC_LOG_LEVEL", raising=False)
    monkeypatch.setattr(sync, "checked_settings", boom)
    with pytest.raises(SystemExit) as info:
        cli.main(["sync", "--once", "--json"])
    assert info.value.code == exitcodes.FAILED_RECORDS
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["ok"] is False and outcome["exit_code"] == 1
    assert outcome["stopped_reason"] == "error" and outcome["failed"] == {}
    assert outcome["errors"][0].endswith("RuntimeError: boom for <email> with password=<redacted>")


def test_known_errors_keep_their_code_at_the_last_resort(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def unreachable(*_: object, **__: object) -> None:
        raise StateError("LEADSYNC_REDIS_URL: Redis at redis://h:1/0 is unreachable")

    monkeypatch.setattr(admin, "checked_email", unreachable)
    with pytest.raises(SystemExit) as info:
        cli.main(["explain", "a@corp.example"])
    assert info.value.code == exitcodes.UNREACHABLE
    assert capsys.readouterr().err == \
        "leadsync: LEADSYNC_REDIS_URL: Redis at redis://h:1/0 is unreachable\n"
