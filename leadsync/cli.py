"""The `leadsync` command (DESIGN.md §8).

Subcommands live in their own modules and are imported only when used, so `leadsync score`
does not pay for Celery or the CRM SDKs. Exit codes are those of `leadsync.exitcodes` for every
command; `main` is the last resort: an error no command expected becomes one redacted line and
an exit code, never a traceback (unless LEADSYNC_LOG_LEVEL=DEBUG asks for it).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from typing import Any, NoReturn

import click

from leadsync import exitcodes

# name -> "module:attribute" of a click command
_COMMANDS: dict[str, str] = {
    "demo": "leadsync.commands:demo",
    "sync": "leadsync.commands:sync",
    "check": "leadsync.commands:check",
    "health": "leadsync.commands.health:health",
    "provision": "leadsync.commands:provision",
    "explain": "leadsync.commands:explain",
    "review": "leadsync.commands.review:review",
    "worker": "leadsync.commands:worker",
    "score": "leadsync.cli_score:score",
    "sandbox": "leadsync.sandbox.cli:sandbox",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """A usage error (an unknown option, a value out of range) still prints the outcome
        object on stdout when `--json` was asked for: a script reading it gets exit_code 2 and
        the message, as for every other error (click then prints the usage on stderr)."""
        rest = [*ctx.protected_args, *ctx.args]
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if "--json" in rest:
                from leadsync.commands.common import outcome

                click.echo(json.dumps(outcome(exitcodes.CONFIG, stopped_reason="settings",
                                              errors=[exc.format_message()]),
                                      ensure_ascii=False))
            raise


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="leadsync")
def cli() -> None:
    """leadsync: one lead score, stage and SLA, executed in HubSpot and Salesforce."""


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="leadsync")
    except Exception as exc:  # the last resort: no traceback reaches a user
        _last_resort(exc, sys.argv[1:] if argv is None else argv)


def _last_resort(exc: Exception, argv: list[str]) -> NoReturn:
    from leadsync.commands.common import classify, outcome
    from leadsync.logs import redact

    known = classify(exc)
    if known is not None:
        code, word, message = known
    else:
        code, word = exitcodes.FAILED_RECORDS, "error"
        message = ("unexpected error, a bug in leadsync (rerun with LEADSYNC_LOG_LEVEL=DEBUG "
                   f"for the traceback and report it): {type(exc).__name__}: {str(exc)[:300]}")
    debug = os.environ.get("LEADSYNC_LOG_LEVEL", "").strip().upper() == "DEBUG"
    if debug:
        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    sys.stderr.write(f"leadsync: {redact(message)}\n")
    if "--json" in argv:
        sys.stdout.write(json.dumps(outcome(code, stopped_reason=word, errors=[message]),
                                    ensure_ascii=False) + "\n")
    sys.stdout.flush()
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
