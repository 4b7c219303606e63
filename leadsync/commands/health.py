"""`leadsync health`: is scheduling alive? One line, exit 0 (healthy) or 1 (not): a container
healthcheck (Docker reserves exit code 2, so a settings error is 1 here too, and named)."""

from __future__ import annotations

import json
import socket
from typing import Any

import click

from leadsync import exitcodes
from leadsync.tasks.health import COMPONENTS, Verdict

UNHEALTHY = exitcodes.FAILED_RECORDS  # 1: Docker's "unhealthy"


def scheduling_verdict(settings: Any, *, only: tuple[str, ...] = COMPONENTS,
                       host: str | None = None, max_queue_minutes: int | None = None) -> Verdict:
    """The verdict for these settings; Redis unreachable makes every check fail."""
    import redis

    from leadsync.tasks.health import judge, read_status, unreachable

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=5)
    try:
        status = read_status(client)
    except (redis.RedisError, OSError) as exc:
        return unreachable(f"unreachable ({type(exc).__name__})")
    finally:
        client.close()
    minutes = max_queue_minutes or settings.health_queue_max_age_minutes
    return judge(status, heartbeat_seconds=settings.heartbeat_seconds,
                 max_queue_age_s=60.0 * minutes, only=only, host=host)


def _emit(as_json: bool, ok: bool, line: str, checks: list[dict[str, Any]]) -> None:
    if as_json:  # the keys every --json object carries (an unhealthy reason is an error)
        from leadsync.commands.common import outcome

        errors = [] if ok else [f"{c['what']}: {c['detail']}" for c in checks if not c["ok"]]
        click.echo(json.dumps({**outcome(exitcodes.OK if ok else UNHEALTHY,
                                         errors=errors or ([] if ok else [line])),
                               "line": line, "checks": checks}, ensure_ascii=False))
    else:
        click.echo(line)
    if not ok:
        raise click.exceptions.Exit(UNHEALTHY)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--only", "only", multiple=True, type=click.Choice(COMPONENTS),
              help="Check only these (repeatable); default: beat, worker and queue.")
@click.option("--local", is_flag=True,
              help="Count only workers on this host (a worker container's own healthcheck).")
@click.option("--max-queue-age", "max_queue_minutes", type=click.IntRange(min=1), default=None,
              help="Minutes queued work may wait [default: "
                   "LEADSYNC_HEALTH_QUEUE_MAX_AGE_MINUTES, 15].")
def health(as_json: bool, only: tuple[str, ...], local: bool,
           max_queue_minutes: int | None) -> None:
    """Beat ticking, a worker alive, queued work taken: exit 0 healthy, 1 not (one line)."""
    from leadsync.config.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        message = " ".join(str(exc).split())
        _emit(as_json, False, f"unhealthy: settings: {message}", [])
        return
    if not settings.redis_url:
        _emit(as_json, False, "unhealthy: settings: LEADSYNC_REDIS_URL is not set", [])
        return
    chosen = tuple(c for c in COMPONENTS if c in only) if only else COMPONENTS
    verdict = scheduling_verdict(settings, only=chosen,
                                 host=socket.gethostname() if local else None,
                                 max_queue_minutes=max_queue_minutes)
    _emit(as_json, verdict.healthy, verdict.line(),
          [{"what": c.what, "ok": c.ok, "detail": c.detail} for c in verdict.checks])
