"""Switchable fault injection: what can go wrong between leadsync and a CRM, on demand.

`Faults` is the value a test or the CLI chooses; `FaultInjector` is the server's live, seeded
interpretation of it (the RNG and the remaining 429 burst). Faults never apply to the sandbox's
own `/__sandbox__/*` control endpoints.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any


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

    def __post_init__(self) -> None:
        for name in ("error_rate", "record_failure_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, got {value!r}")
        for name in ("latency_ms", "burst_429"):
            if getattr(self, name) < 0:
                raise ValueError(f"Faults.{name} must be >= 0, got {getattr(self, name)!r}")

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
        return float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"fault {key!r}: cannot read {raw!r} as {type_name}") from None


class FaultInjector:
    """The live fault state of a running sandbox; thread-safe."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self.faults = Faults()
        self._rng = random.Random(0)  # noqa: S311 - reproducible faults, not security
        self._burst_left = 0
        self.set(faults or Faults())

    def set(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)  # noqa: S311 - reproducible faults
            self._burst_left = faults.burst_429

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
