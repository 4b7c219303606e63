"""`leadsync check`, `provision`, `explain EMAIL` and `worker` (exit codes: leadsync.exitcodes)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from leadsync import exitcodes
from leadsync.commands.common import (
    checked_settings,
    classify,
    console,
    err_console,
    fail,
    outcome,
    reported,
    settings_or_exit,
)

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@reported()
def check(as_json: bool) -> None:
    """Settings, rules file, connectivity and written fields in both CRMs.

    With Redis configured, also beat, worker and queue (as `leadsync health`). Exit 0 when all
    is well; 2 for settings or rules; 4 when a CRM or Redis cannot be reached or refuses the
    credentials; 1 when something else is missing (fields, scopes, a live beat or worker)."""
    from leadsync.config.rules import RulesError
    from leadsync.runtime import load_model

    settings = settings_or_exit()
    rows: list[tuple[str, int, str]] = [("settings", exitcodes.OK, "loaded and checked")]
    model = None
    try:
        model = load_model(settings)
        calendar = model.sla.calendar
        clock = ("SLA hours are wall-clock hours" if calendar is None
                 else f"SLA hours are business hours: {calendar.describe()}")
        rows.append(("rules file", exitcodes.OK, f"{settings.rules_file or 'bundled default'} "
                                                 f"(model {model.version}; {clock})"))
    except RulesError as exc:
        rows.append(("rules file", exitcodes.CONFIG, str(exc)))
    connectors = _connectors(settings, rows)
    if connectors is not None:
        for name in ("hubspot", "salesforce"):
            conn = connectors.get(name)
            if conn is None:
                rows.append((name, exitcodes.OK, "disabled (no credentials)"))
                continue
            rows.append((name, *_check_crm(conn)))
        if not connectors:
            rows.append(("connectors", exitcodes.CONFIG, "no CRM is configured"))
        rows.extend(_routing_rows(model, connectors, rows))
    if settings.redis_url and not any(what in ("connectors", "redis") for what, _, _ in rows):
        rows.append(("redis", *_redis_ok(settings.redis_url)))
        rows.extend(_scheduling_rows(settings) if rows[-1][1] == exitcodes.OK else [])
    failing = {code for _, code, _ in rows if code}
    # the most telling code: settings first, then reachability, then anything else
    code = next((c for c in (exitcodes.CONFIG, exitcodes.UNREACHABLE) if c in failing),
                exitcodes.FAILED_RECORDS if failing else exitcodes.OK)
    if as_json:
        errors = [f"{what}: {detail}" for what, c, detail in rows if c]
        click.echo(json.dumps({**outcome(code, errors=errors), "checks": [
            {"what": what, "ok": not c, "detail": detail} for what, c, detail in rows]},
            ensure_ascii=False))
    else:
        table = Table(title="leadsync check", title_justify="left")
        table.add_column("what", no_wrap=True)
        table.add_column("ok", justify="center", no_wrap=True)
        table.add_column("detail", overflow="fold")
        for what, c, detail in rows:
            table.add_row(what, "[red]✗[/red]" if c else "[green]✓[/green]", detail)
        console.print(table)
    if code:
        raise click.exceptions.Exit(code)


def _connectors(settings: Any, rows: list[tuple[str, int, str]]) -> dict[str, Any] | None:
    """The CRM connectors to check. An unreachable Redis or a broken rules file is a row of
    its own (the rules file's row is there already), and the CRMs are checked all the same:
    connectors need neither (without Redis, their rate limit is counted in this process)."""
    from leadsync.config.rules import RulesError
    from leadsync.connectors import build_connectors
    from leadsync.runtime import build_runtime

    try:
        return dict(build_runtime(settings).connectors)
    except Exception as exc:  # reported, not raised: check lists every problem
        known = classify(exc)
        if known is None:
            raise
        if not isinstance(exc, RulesError):
            rows.append(("redis" if known[2].startswith("LEADSYNC_REDIS_URL") else "connectors",
                         known[0], known[2]))
    try:
        return {c.system: c for c in build_connectors(settings)}
    except Exception as exc:
        known = classify(exc)
        if known is None:
            raise
        rows.append(("connectors", known[0], known[2]))
        return None


def _routing_rows(model: Any, connectors: dict[str, Any],
                  rows: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
    """Every routing target (rule owner, pool member) must be an active owner in a CRM that
    answered: one no CRM has would leave the people routed to them without an owner
    (docs/routing.md). Named by its place in the rules file, never by its email."""
    if model is None or not model.routing.rules:
        return []
    targets: dict[str, list[str]] = {}
    for rule in model.routing.rules:
        if rule.owner is not None:
            targets.setdefault(rule.owner, []).append(f"rule '{rule.id}' owner")
        for i, member in enumerate(rule.pool.members if rule.pool is not None else ()):
            where = f"routing.pools.{rule.pool.name}.members[{i}]"
            if where not in targets.get(member.email, []):
                targets.setdefault(member.email, []).append(where)
    answered = [name for name, code, _ in rows if name in connectors and code == exitcodes.OK]
    if not answered:
        return []  # no CRM to ask: its own row says why
    owners = {email for name in answered for email in connectors[name].list_owners().values()}
    missing = [w for email, places in targets.items() if email not in owners for w in places]
    if not missing:
        return [("routing", exitcodes.OK, f"{len(targets)} routing target(s), each an active "
                                          f"owner in {' or '.join(answered)}")]
    return [("routing", exitcodes.FAILED_RECORDS,
             f"{len(missing)} routing target(s) are no active owner in {' or '.join(answered)}: "
             f"{', '.join(missing[:10])}; people routed to them get no owner")]


def _check_crm(conn: Any) -> tuple[int, str]:
    """Reach the CRM with one read every job needs (owners), then check fields and scopes."""
    try:
        conn.list_owners()
    except Exception as exc:
        known = classify(exc)
        if known is None:
            raise
        return known[0], known[2]
    problems: list[str] = conn.check()
    return (exitcodes.FAILED_RECORDS if problems else exitcodes.OK,
            "; ".join(problems) or "connected, fields present")


def _scheduling_rows(settings: Any) -> list[tuple[str, int, str]]:
    """Beat ticking, a live worker, queued work taken (as `leadsync health`): exit 1 if not."""
    from leadsync.commands.health import scheduling_verdict

    return [(c.what, exitcodes.OK if c.ok else exitcodes.FAILED_RECORDS, c.detail)
            for c in scheduling_verdict(settings).checks]


def _redis_ok(url: str) -> tuple[int, str]:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return exitcodes.UNREACHABLE, f"unreachable: {type(exc).__name__}"
    return exitcodes.OK, "reachable"


def _writable_dir(path: Path) -> None:
    """--out must be a directory we can create and write in: checked before any CRM call."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".leadsync-probe-"):
            pass
    except OSError as exc:
        fail(f"--out {path}: cannot write there ({exc.strerror or type(exc).__name__}); "
             "expected a directory you can create and write in", exitcodes.CONFIG,
             stopped_reason="settings")


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("leadsync-salesforce-metadata"), show_default=True,
              help="Where to write the Salesforce metadata package (source format).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@reported()
def provision(out_dir: Path, as_json: bool) -> None:
    """Create the HubSpot property group and properties; write the Salesforce field package."""
    from leadsync.runtime import build_runtime

    settings = checked_settings()
    runtime = build_runtime(settings)
    if not runtime.connectors:
        fail("no CRM is configured: set LEADSYNC_HUBSPOT__ACCESS_TOKEN and/or the "
             "LEADSYNC_SALESFORCE__* credentials", exitcodes.CONFIG, stopped_reason="settings")
    if "salesforce" in runtime.connectors:
        _writable_dir(out_dir)
    done: dict[str, list[str]] = {}
    for name, conn in runtime.connectors.items():
        done[name] = conn.provision(out_dir if name == "salesforce" else None)  # type: ignore[attr-defined]
    deploy = (f"sf project deploy start --source-dir {out_dir}/force-app"
              if "salesforce" in runtime.connectors else None)
    if as_json:
        click.echo(json.dumps({**outcome(exitcodes.OK), **done, "deploy": deploy},
                              ensure_ascii=False))
        return
    for name, lines in done.items():
        console.print(f"[bold]{name}[/bold]")
        for line in lines:  # paths: never wrapped mid-name (a pipe gets whole lines)
            console.print(f"  {line}", markup=False, soft_wrap=True)
    if deploy:
        console.print(f"Deploy with: {deploy}", markup=False, soft_wrap=True)


def checked_email(value: str) -> str:
    """EMAIL of `explain`, checked before any call; the message never echoes a long input."""
    from leadsync.identity import normalise_email

    text = value.strip()
    shown = text if len(text) <= 40 else text[:39] + "…"
    if len(text) > MAX_EMAIL_LENGTH:
        fail(f"EMAIL: {len(text):,} characters is not an email address; expected one address "
             f"of at most {MAX_EMAIL_LENGTH} characters (name@domain)",
             exitcodes.CONFIG, stopped_reason="settings")
    local, _, domain = text.partition("@")
    email = normalise_email(text)
    if (email is None or not local or "." not in domain or domain.startswith(".")
            or domain.endswith(".") or any(c.isspace() for c in text) or text.count("@") != 1):
        fail(f"EMAIL: {shown!r} is not an email address; expected one address of the form "
             "name@domain", exitcodes.CONFIG, stopped_reason="settings")
    return email


@click.command()
@click.argument("email", required=False)
@click.option("--account", "account", metavar="DOMAIN|ID",
              help="Explain an account instead: its score, MQA state, rules and members "
                   "(a domain, a Salesforce Account / HubSpot company id, or an account key).")
@reported(None)
def explain(email: str | None, account: str | None) -> None:
    """One person's score breakdown, stage reasoning and SLA clock (exit 1: no such person),
    or with --account one account's (exit 2: no such account)."""
    if (email is None) == (account is None):
        fail("explain takes either EMAIL or --account DOMAIN|ID (one of them)",
             exitcodes.CONFIG, stopped_reason="settings")
    if account is not None and not account.strip():
        fail("--account: empty; expected a domain, an account id or an account key",
             exitcodes.CONFIG, stopped_reason="settings")
    address = checked_email(email) if email is not None else None
    settings = checked_settings()
    if not (settings.hubspot.enabled or settings.salesforce.enabled):
        fail("no CRM is configured: set LEADSYNC_HUBSPOT__ACCESS_TOKEN and/or the "
             "LEADSYNC_SALESFORCE__* credentials", exitcodes.CONFIG, stopped_reason="settings")
    if account is not None:
        from leadsync.explain_account import AccountNotFound, explain_account

        try:
            explain_account(settings, account, console)
        except AccountNotFound as exc:
            fail(str(exc), exitcodes.CONFIG, stopped_reason="settings")
        return
    from leadsync.explain import explain_person

    assert address is not None
    explain_person(settings, address, console)


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--beat/--no-beat", "with_beat", default=True, show_default=True,
              help="Also run (and supervise) the beat scheduler; run exactly one beat in all.")
@click.option("--schedule", "schedule", default="celerybeat-schedule", show_default=True,
              help="Beat's schedule file.")
@click.pass_context
@reported(None)
def worker(ctx: click.Context, with_beat: bool, schedule: str) -> None:
    """Run the Celery worker and beat as two supervised processes, each restarted if it dies.

    Extra options go to `celery worker` (e.g. --concurrency=2). Exit 0 once stopped by
    SIGTERM/SIGINT (forwarded to both)."""
    from leadsync.tasks.supervise import Supervisor

    settings = checked_settings()
    if not settings.redis_url:
        fail("LEADSYNC_REDIS_URL is required for the worker (the Celery broker and shared "
             "state), e.g. redis://127.0.0.1:6379/0", exitcodes.CONFIG)
    celery = shutil.which("celery")
    if celery is None:
        fail("the `celery` command is not on PATH; install leadsync into this environment",
             exitcodes.CONFIG)
    if any(a.startswith("-B") for a in ctx.args):  # celery's embedded beat: never supervised
        fail("-B: `leadsync worker` runs beat itself, as a supervised process; drop -B "
             "(or pass --no-beat to run the worker alone)", exitcodes.CONFIG)
    level = settings.log_level.lower()
    commands = {"worker": [celery, "-A", "leadsync.tasks", "worker", "--loglevel", level,
                           *ctx.args]}
    if with_beat:
        commands["beat"] = [celery, "-A", "leadsync.tasks", "beat", "--loglevel", level,
                            f"--schedule={schedule}"]
    for argv in commands.values():
        err_console.print("starting: " + " ".join(argv[1:]), markup=False, soft_wrap=True)
    raise click.exceptions.Exit(Supervisor(commands).run())
