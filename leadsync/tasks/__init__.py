"""leadsync.tasks: the Celery composition root (`celery -A leadsync.tasks worker --beat`).

`app` is built on first access — which `celery -A leadsync.tasks` does at once — from
`load_settings()`, read exactly once per process; a missing LEADSYNC_REDIS_URL is a
SettingsError naming it. Importing `leadsync.tasks.celery_app` or `.jobs` (tests, the CLI)
does not read the environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["app"]

_built: dict[str, Celery] = {}


def _build() -> Celery:
    from celery.signals import after_setup_logger, worker_process_init

    from leadsync.config.settings import load_settings
    from leadsync.logs import configure_logging
    from leadsync.tasks.celery_app import create_app
    from leadsync.tasks.jobs import ContextHolder, register_tasks
    from leadsync.tasks.worker import WorkerContext

    settings = load_settings()
    celery_app = create_app(settings)
    contexts = ContextHolder(lambda: WorkerContext(settings))
    worker_process_init.connect(contexts.reset, weak=False)
    # leadsync's own loggers print JSON lines through the redacting filter (RELIABILITY.md §11)
    after_setup_logger.connect(lambda **_: configure_logging(settings.log_level), weak=False)
    register_tasks(celery_app, contexts)
    return celery_app


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        if "app" not in _built:
            _built["app"] = _build()
        return _built["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
