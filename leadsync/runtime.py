"""The composition root: settings -> rules model, connectors, state store, clock.

Built once per process (`leadsync sync`, a Celery worker process, `leadsync demo`) and passed to
the pipeline; nothing below this module reads the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from leadsync.config.settings import Settings
from leadsync.connectors.base import Connector
from leadsync.scoring import ScoringModel
from leadsync.state import StateStore

log = logging.getLogger("leadsync.runtime")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    model: ScoringModel
    connectors: Mapping[str, Connector]  # by system name; only the enabled ones
    state: StateStore
    clock: Callable[[], datetime] = utc_now
    extras: dict[str, object] = field(default_factory=dict)

    def api_calls(self) -> dict[str, int]:
        return {name: c.api_calls() for name, c in self.connectors.items()}


def load_model(settings: Settings) -> ScoringModel:
    from leadsync.config.rules import load_default_rules, load_rules

    if settings.rules_file is not None:
        return load_rules(settings.rules_file)
    return load_default_rules()


def build_runtime(
    settings: Settings,
    *,
    state: StateStore | None = None,
    clock: Callable[[], datetime] | None = None,
    connectors: Mapping[str, Connector] | None = None,
) -> Runtime:
    """Assemble a runtime. Without a Redis URL the state is in memory (cold on every start)."""
    from leadsync.state import open_state

    redis_client = None
    if settings.redis_url:
        import redis

        redis_client = redis.Redis.from_url(settings.redis_url)
    if state is None:
        state = open_state(settings.redis_url)
    if connectors is None:
        from leadsync.connectors import build_connectors

        built = build_connectors(settings, redis=redis_client)
        connectors = {c.system: c for c in built}
    if not connectors:
        log.warning("no CRM connector is enabled: set LEADSYNC_HUBSPOT__ACCESS_TOKEN and/or "
                    "LEADSYNC_SALESFORCE__* credentials")
    return Runtime(settings=settings, model=load_model(settings), connectors=connectors,
                   state=state, clock=clock or utc_now)
