"""`leadsync check`, `provision`, `explain EMAIL` and `worker`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click
from rich.table import Table

from leadsync.commands.common import console, err_console, fail, settings_or_exit


@click.command()
def check() -> None:
    """Settings, rules file, connectivity and written fields in both CRMs; exit 1 with reasons."""
    from leadsync.config.rules import RulesError
    from leadsync.runtime import build_runtime, load_model

    settings = settings_or_exit()
    rows: list[tuple[str, bool, str]] = [("settings", True, "loaded")]
    try:
        model = load_model(settings)
        rows.append(("rules file", True, f"{settings.rules_file or 'bundled default'} "
                                          f"(model {model.version})"))
    except (RulesError, OSError) as exc:
        rows.append(("rules file", False, str(exc)))
    try:
        runtime = build_runtime(settings)
    except Exception as exc:  # reported, not raised: check lists every problem
        rows.append(("connectors", False, f"{type(exc).__name__}: {exc}"))
        runtime = None
    if runtime is not None:
        for name in ("hubspot", "salesforce"):
            conn = runtime.connectors.get(name)
            if conn is None:
                rows.append((name, True, "disabled (no credentials)"))
                continue
            problems = conn.check()  # type: ignore[attr-defined]
            rows.append((name, not problems, "; ".join(problems) or "connected, fields present"))
        if settings.redis_url:
            rows.append(("redis", *_redis_ok(settings.redis_url)))
        if not runtime.connectors:
            rows.append(("connectors", False, "no CRM is configured"))
    table = Table(title="leadsync check", title_justify="left")
    table.add_column("what")
    table.add_column("ok", justify="center")
    table.add_column("detail")
    for what, ok, detail in rows:
        table.add_row(what, "[green]✓[/green]" if ok else "[red]✗[/red]", detail)
    console.print(table)
    if not all(ok for _, ok, _ in rows):
        raise click.exceptions.Exit(1)


def _redis_ok(url: str) -> tuple[bool, str]:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return False, f"unreachable: {type(exc).__name__}"
    return True, "reachable"


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("leadsync-salesforce-metadata"), show_default=True,
              help="Where to write the Salesforce metadata package (source format).")
def provision(out_dir: Path) -> None:
    """Create the HubSpot property group and properties; write the Salesforce field package."""
    from leadsync.runtime import build_runtime

    settings = settings_or_exit()
    runtime = build_runtime(settings)
    if not runtime.connectors:
        fail("no CRM is configured")
    for name, conn in runtime.connectors.items():
        done = conn.provision(out_dir if name == "salesforce" else None)  # type: ignore[attr-defined]
        console.print(f"[bold]{name}[/bold]")
        for line in done:
            console.print(f"  {line}")
    if "salesforce" in runtime.connectors:
        console.print(f"Deploy with: sf project deploy start --source-dir {out_dir}/force-app")


@click.command()
@click.argument("email")
def explain(email: str) -> None:
    """One person's score breakdown, stage reasoning and SLA clock."""
    from leadsync.explain import explain_person

    settings = settings_or_exit()
    explain_person(settings, email, console)


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the Celery worker with beat (same as `celery -A leadsync.tasks worker --beat`)."""
    settings = settings_or_exit()
    if not settings.redis_url:
        fail("LEADSYNC_REDIS_URL is required for the worker (the Celery broker and shared "
             "state), e.g. redis://127.0.0.1:6379/0", 2)
    celery = shutil.which("celery")
    if celery is None:
        fail("the `celery` command is not on PATH; install leadsync into this environment")
    args = [celery, "-A", "leadsync.tasks", "worker", "--beat", "--loglevel",
            settings.log_level.lower(), *ctx.args]
    err_console.print("starting: " + " ".join(args[1:]))
    os.execv(celery, args)  # noqa: S606 - replaces this process with the worker on purpose
