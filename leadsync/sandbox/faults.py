"""Switchable fault injection: what can go wrong between leadsync and a CRM, on demand.

`Faults` is the value a test or the CLI chooses; `FaultInjector` is the server's live, seeded
interpretation of it (the RNG, the remaining 429 burst, the replies dropped so far). Faults
never apply to the sandbox's own `/__sandbox__/*` control endpoints.

Two kinds of lost connection: `drop_rate` closes the connection *before* the request is handled
(nothing happened), `reply_drop_rate` lets the CRM handle and commit a create or an update and
then closes (or resets) the connection without a reply — what a client sees when a proxy or the
network loses the answer. The client cannot tell them apart; only the second one duplicates a
create that is replayed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

# the record writes a reply can be lost after (endpoint names as in the sandbox's stats)
CREATE_ENDPOINTS = frozenset({
    "POST /crm/v3/objects/tasks", "POST /crm/v3/objects/tasks/batch/create",
    "POST /composite/sobjects", "POST /sobjects/{object}",
})  # fmt: skip
UPDATE_ENDPOINTS = frozenset({
    "POST /crm/v3/objects/contacts/batch/update", "PATCH /crm/v3/objects/contacts/{id}",
    "PATCH /composite/sobjects", "PATCH /sobjects/{object}/{id}",
})  # fmt: skip
REPLY_DROP_ON = {"creates": ("create",), "updates": ("update",), "writes": ("create", "update")}
REPLY_DROP_STYLES = ("close", "reset")


def write_kind(endpoint: str) -> str | None:
    """'create', 'update' or None (a read, a search, a login) for an endpoint name."""
    if endpoint in CREATE_ENDPOINTS:
        return "create"
    return "update" if endpoint in UPDATE_ENDPOINTS else None


@dataclass(frozen=True, slots=True)
class Faults:
    """Faults to inject from now on.

    latency_ms: added to every vendor response. error_rate: share of requests answered 5xx.
    burst_429: serve the next N HubSpot requests as 429 TEN_SECONDLY_ROLLING. daily_429: every
    HubSpot request gets the DAILY-policy 429. record_failure_rate: share of records in batch
    writes that fail (HubSpot 207 errors, Salesforce UNABLE_TO_LOCK_ROW). drop_rate: share of
    requests whose connection is closed without a response. expire_sessions: every Salesforce
    session issued so far is invalidated once (next call 401 INVALID_SESSION_ID). seed: the fault
    RNG's seed, so a faulty run is reproducible.
    """

    latency_ms: int = 0
    error_rate: float = 0.0
    burst_429: int = 0
    daily_429: bool = False
    record_failure_rate: float = 0.0
    drop_rate: float = 0.0
    expire_sessions: bool = False
    seed: int = 0
    reply_drop_rate: float = 0.0
    reply_drop_on: str = "writes"
    reply_drop_max: int = 0
    reply_drop_style: str = "close"
    search_lag_ms: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "record_failure_rate", "drop_rate", "reply_drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, got {value!r}")
        for name in ("latency_ms", "burst_429", "reply_drop_max", "search_lag_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"Faults.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.reply_drop_on not in REPLY_DROP_ON:
            raise ValueError(f"Faults.reply_drop_on must be one of {sorted(REPLY_DROP_ON)}, "
                             f"got {self.reply_drop_on!r}")  # fmt: skip
        if self.reply_drop_style not in REPLY_DROP_STYLES:
            raise ValueError(f"Faults.reply_drop_style must be one of {list(REPLY_DROP_STYLES)}, "
                             f"got {self.reply_drop_style!r}")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Faults:
        """Build from JSON-like values; unknown keys and unparseable values raise ValueError
        naming the key."""
        known = {f.name: f.type for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, raw in data.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; expected one of {sorted(known)}")
            kwargs[key] = _coerce(key, str(known[key]), raw)
        return cls(**kwargs)

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """Parse the CLI form `latency_ms=50,error_rate=0.05` (empty string: no faults)."""
        items: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"fault {part!r} must look like name=value")
            items[key.strip()] = value.strip()
        return cls.from_mapping(items)


def _coerce(key: str, type_name: str, raw: Any) -> Any:
    try:
        if type_name == "bool":
            if isinstance(raw, str):
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                return raw.lower() in ("true", "1", "yes")
            return bool(raw)
        if type_name == "int":
            return int(raw)
        if type_name == "str":
            return str(raw).strip()
        return float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"fault {key!r}: cannot read {raw!r} as {type_name}") from None


class FaultInjector:
    """The live fault state of a running sandbox; thread-safe."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self.faults = Faults()
        self._rng = random.Random(0)  # noqa: S311 - reproducible faults, not security
        # lost replies draw from one RNG per CRM: leadsync writes to both CRMs at once, so a
        # shared stream would depend on how their threads interleave
        self._reply_rngs: dict[str, random.Random] = {}
        self._burst_left = 0
        self._replies_dropped = 0
        self.set(faults or Faults())

    def set(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)  # noqa: S311 - reproducible faults
            self._reply_rngs = {}
            self._burst_left = faults.burst_429
            self._replies_dropped = 0

    def take_reply_drop(self, endpoint: str, system: str = "") -> bool:
        """True when the reply to this (already processed) request must be lost: the endpoint
        is a write of the kind `reply_drop_on` names, the cap is not reached, and the rate
        draws it (from `system`'s own stream seeded with `seed`, so each CRM's sequence is
        reproducible whatever the other CRM does meanwhile)."""
        faults = self.faults
        kind = write_kind(endpoint)
        if faults.reply_drop_rate <= 0.0 or kind not in REPLY_DROP_ON[faults.reply_drop_on]:
            return False
        with self._lock:
            if faults.reply_drop_max and self._replies_dropped >= faults.reply_drop_max:
                return False
            rng = self._reply_rngs.get(system)
            if rng is None:
                rng = self._reply_rngs[system] = random.Random(faults.seed)  # noqa: S311
            if rng.random() >= faults.reply_drop_rate:
                return False
            self._replies_dropped += 1
            return True

    def chance(self, rate: float) -> bool:
        """True with probability `rate`, from the seeded fault RNG."""
        if rate <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def take_burst(self) -> bool:
        """Consume one request of the 429 burst; True when this request must be a 429."""
        with self._lock:
            if self._burst_left > 0:
                self._burst_left -= 1
                return True
            return False
