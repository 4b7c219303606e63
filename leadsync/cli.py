"""The `leadsync` command (DESIGN.md §8).

Subcommands live in their own modules and are imported only when used, so `leadsync score`
does not pay for Celery or the CRM SDKs.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> "module:attribute" of a click command
_COMMANDS: dict[str, str] = {
    "demo": "leadsync.commands:demo",
    "sync": "leadsync.commands:sync",
    "check": "leadsync.commands:check",
    "provision": "leadsync.commands:provision",
    "explain": "leadsync.commands:explain",
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


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="leadsync")
def cli() -> None:
    """leadsync: one lead score, stage and SLA, executed in HubSpot and Salesforce."""


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="leadsync")


if __name__ == "__main__":  # pragma: no cover
    main()
