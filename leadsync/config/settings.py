"""Settings from the environment (DESIGN.md §7): prefix LEADSYNC_, nested with `__`.

Built once at the composition root (`cli`, `tasks`) with `load_settings()` and passed in.
Secrets are `SecretStr`; `SettingsError` names the variable at fault and never echoes a value.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

ENV_PREFIX = "LEADSYNC_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# what a Lead Status may mean (the deal-derived sales statuses come from opportunities, not here)
LEAD_STATUS_TARGETS = ("working", "accepted", "rejected", "disqualified")
DEFAULT_STATUS_MAP: dict[str, str] = {
    "Open - Not Contacted": "",
    "Working - Contacted": "working",
    "Working": "working",
    "Qualified": "accepted",
    "Accepted": "accepted",
    "Unqualified": "disqualified",
    "Disqualified": "disqualified",
    "Rejected": "rejected",
    "Nurture": "rejected",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$")
# login | test | a My Domain: mycompany.my, mycompany--uat.sandbox.my, mycompany.develop.my ...
_MY_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*\.my$", re.IGNORECASE)


class SettingsError(Exception):
    """A bad or missing setting; the message names the environment variable and what is expected."""


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _http_url(value: str, example: str) -> str:
    value = value.strip()
    shown = value if len(value) <= 80 else value[:79] + "…"
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = urlsplit(""), False
    if (parts.scheme not in ("http", "https") or not parts.hostname or not port_ok
            or any(c.isspace() for c in value)):
        raise ValueError(f"{shown!r} is not an http(s) URL; expected e.g. {example}")
    if parts.username or parts.password:
        raise ValueError("must not carry a user or password; expected e.g. " + example)
    return value.rstrip("/")


def _readable_file(path: Path, what: str, marker: str | None = None) -> Path:
    path = path.expanduser()
    if not path.exists():
        raise ValueError(f"{path}: no such file; expected {what}")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file; expected {what}")
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 20)
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror}); expected {what}") from None
    if marker is not None and marker.encode() not in head:
        raise ValueError(f"{path}: has no '{marker}' block; expected {what}")
    return path


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError("not an email address; expected the owner's email address "
                         "(name@domain), which is looked up in each CRM's users")
    return value


def parse_status_map(value: object) -> dict[str, str]:
    """LEADSYNC_SALESFORCE__STATUS_MAP: JSON {"Lead Status": "target"}, merged over the default
    (keys compared case-insensitively); targets must be one of LEAD_STATUS_TARGETS or ""."""
    if isinstance(value, str):
        if not value.strip():
            return dict(DEFAULT_STATUS_MAP)
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc}); expected an object such as "
                             '{"Contacted": "working", "Qualified": "accepted"}') from None
    if not isinstance(value, dict):
        raise ValueError('expected a JSON object of Lead Status -> target, e.g. '
                         '{"Contacted": "working"}')
    allowed = ("", *LEAD_STATUS_TARGETS)
    for key, target in value.items():
        if not isinstance(key, str) or not key.strip() or not isinstance(target, str):
            raise ValueError(f"entry {str(key)[:40]!r}: keys and targets must be text")
        if target.strip().lower() not in allowed:
            close = difflib.get_close_matches(target.strip().lower(), LEAD_STATUS_TARGETS, 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{key[:40]!r} maps to {target[:40]!r}{hint}; expected one of "
                f"{', '.join(LEAD_STATUS_TARGETS)} or \"\" (no sales status)"
            )
    overrides = {k.strip(): v.strip().lower() for k, v in value.items()}
    lowered = {k.lower() for k in overrides}
    merged = {k: v for k, v in DEFAULT_STATUS_MAP.items() if k.lower() not in lowered}
    merged.update(overrides)
    return merged


class HubSpotFieldNames(BaseModel):
    score: str = "leadsync_score"
    fit_grade: str = "leadsync_fit_grade"
    engagement: str = "leadsync_engagement"
    stage: str = "leadsync_stage"
    reasons: str = "leadsync_reasons"
    mql_at: str = "leadsync_mql_at"
    sql_at: str = "leadsync_sql_at"
    sla_due: str = "leadsync_sla_due"
    sla_status: str = "leadsync_sla_status"
    model: str = "leadsync_model"
    routed_by: str = "leadsync_routed_by"  # docs/routing.md: which rule routed the person


class SalesforceFieldNames(BaseModel):
    score: str = "LeadSync_Score__c"
    fit_grade: str = "LeadSync_Fit_Grade__c"
    engagement: str = "LeadSync_Engagement__c"
    stage: str = "LeadSync_Stage__c"
    reasons: str = "LeadSync_Reasons__c"
    mql_at: str = "LeadSync_MQL_At__c"
    sql_at: str = "LeadSync_SQL_At__c"
    sla_due: str = "LeadSync_SLA_Due__c"
    sla_status: str = "LeadSync_SLA_Status__c"
    model: str = "LeadSync_Model__c"
    routed_by: str = "LeadSync_Routed_By__c"  # docs/routing.md: which rule routed the person


class HubSpotSettings(BaseModel):
    access_token: SecretStr | None = None
    base_url: str = "https://api.hubapi.com"
    rate_limit_per_10s: int = Field(100, ge=1, le=1000)
    rate_limit_share: float = Field(0.8, gt=0, le=1)  # of the 10 s window leadsync may use
    search_per_second: float = Field(4.0, gt=0, le=50)
    timeout_seconds: float = Field(30.0, gt=0)
    fields: HubSpotFieldNames = HubSpotFieldNames()

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return _http_url(v, "https://api.hubapi.com")

    @property
    def enabled(self) -> bool:
        return self.access_token is not None and bool(self.access_token.get_secret_value())


class SalesforceSettings(BaseModel):
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    domain: str = "login"  # login | test | <mydomain>.my
    login_url: str | None = None  # overrides https://{domain}.salesforce.com (sandbox, proxies)
    instance_url: str | None = None
    session_id: SecretStr | None = None
    consumer_key: str | None = None
    private_key_file: Path | None = None
    ca_bundle: Path | None = None  # extra CA to trust (the sandbox's self-signed certificate)
    api_version: str = "59.0"
    timeout_seconds: float = Field(30.0, gt=0)
    daily_budget_share: float = Field(0.5, gt=0, le=1)  # of the org's daily API limit
    # Lead Status (sales-owned picklist) -> normalised sales_status; case-insensitive keys;
    # a JSON map from the environment is merged over this default (parse_status_map)
    status_map: Annotated[dict[str, str], NoDecode] = dict(DEFAULT_STATUS_MAP)
    fields: SalesforceFieldNames = SalesforceFieldNames()

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        v = v.strip()
        if v.lower() in ("login", "test") or _MY_DOMAIN.match(v):
            return v
        shown = v if len(v) <= 60 else v[:59] + "…"
        hint = ""
        if v.lower().endswith(".salesforce.com"):
            hint = f" (drop '.salesforce.com': {v[:-len('.salesforce.com')]!r})"
        raise ValueError(
            f"{shown!r} is not a Salesforce login domain{hint}; expected 'login' (production), "
            "'test' (sandboxes) or a My Domain such as 'mycompany.my' "
            "(leadsync logs in at https://<domain>.salesforce.com)"
        )

    @field_validator("status_map", mode="before")
    @classmethod
    def _status_map(cls, v: object) -> dict[str, str]:
        return parse_status_map(v)

    @field_validator("login_url", "instance_url", "username", "consumer_key", mode="before")
    @classmethod
    def _blank(cls, v: object) -> object:
        return _blank_is_none(v)

    @field_validator("login_url")
    @classmethod
    def _login_url(cls, v: str | None) -> str | None:
        return None if v is None else _http_url(v, "https://login.salesforce.com")

    @field_validator("instance_url")
    @classmethod
    def _instance_url(cls, v: str | None) -> str | None:
        return None if v is None else _http_url(v, "https://mycompany.my.salesforce.com")

    @field_validator("ca_bundle", "private_key_file", mode="before")
    @classmethod
    def _blank_path(cls, v: object) -> object:
        return _blank_is_none(v)

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, v: Path | None) -> Path | None:
        if v is None:
            return None
        return _readable_file(v, "a PEM file of CA certificates", "-----BEGIN CERTIFICATE-----")

    @field_validator("private_key_file")
    @classmethod
    def _private_key(cls, v: Path | None) -> Path | None:
        if v is None:
            return None
        return _readable_file(v, "the PEM private key of the connected app's certificate",
                              "PRIVATE KEY-----")

    @model_validator(mode="after")
    def _complete_login(self) -> SalesforceSettings:
        """Some credentials but no complete login would silently disable Salesforce."""
        given = [name for name in ("username", "password", "security_token", "session_id",
                                   "consumer_key", "private_key_file")
                 if getattr(self, name) is not None]
        if given and self.auth_mode is None:
            names = ", ".join(f"LEADSYNC_SALESFORCE__{n.upper()}" for n in given)
            raise ValueError(
                f"{names} set, but no complete Salesforce login; expected one of: __USERNAME + "
                "__PASSWORD (+ __SECURITY_TOKEN); __INSTANCE_URL + __SESSION_ID; or __USERNAME "
                "+ __CONSUMER_KEY + __PRIVATE_KEY_FILE (JWT)"
            )
        return self

    @property
    def auth_mode(self) -> Literal["password", "session", "jwt"] | None:
        if self.username and self.consumer_key and self.private_key_file:
            return "jwt"
        if self.username and self.password is not None:
            return "password"
        if self.instance_url and self.session_id is not None:
            return "session"
        return None

    @property
    def enabled(self) -> bool:
        return self.auth_mode is not None


class SlaSettings(BaseModel):
    fallback_owner: str | None = None  # owner email used when a person has none
    escalation_owner: str | None = None  # owner email for breached-SLA escalations
    # an escalation (breached) task is due this long after it is created, never in the past
    escalation_due_hours: float = Field(4.0, gt=0, le=24 * 14)

    @field_validator("fallback_owner", "escalation_owner", mode="before")
    @classmethod
    def _blank(cls, v: object) -> object:
        return _blank_is_none(v)

    @field_validator("fallback_owner", "escalation_owner")
    @classmethod
    def _owner(cls, v: str | None) -> str | None:
        return _email(v)


def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone `name` (e.g. "UTC", "Asia/Tokyo"); ValueError when unknown."""
    try:
        if not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError, OSError):
        raise ValueError(
            "not a known IANA time zone name (expected e.g. 'UTC' or 'Asia/Tokyo')"
        ) from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
        case_sensitive=False,
    )

    hubspot: HubSpotSettings = HubSpotSettings()
    salesforce: SalesforceSettings = SalesforceSettings()
    sla: SlaSettings = SlaSettings()
    redis_url: str | None = None
    rules_file: Path | None = None
    sync_interval_seconds: int = Field(300, ge=10)
    sla_sweep_seconds: int = Field(900, ge=10)
    full_reevaluation_hour_utc: int = Field(2, ge=0, le=23)
    # people records a paged read (HubSpot's) settles and commits together: a killed or
    # timed-out run redoes at most one page (docs/resume.md)
    page_people: int = Field(1000, ge=100, le=100_000)
    # IANA zone of the times people read: task subjects and bodies, the demo's tables
    timezone: str = "UTC"
    sandbox_stats_url: str | None = None  # informational: printed by `leadsync sandbox serve`
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"  # any case
    # the one HTTP retry policy of both connectors: attempts per call, and its time budget
    http_max_attempts: int = Field(6, ge=1, le=20)
    http_max_retry_seconds: float = Field(180.0, gt=0, le=3600)
    # Celery worker (leadsync.tasks): job lock lease (renewed while a job runs), hard task time
    # limit (soft limit: 90 %), and the broker visibility timeout: how long a crashed worker's
    # message stays invisible (a running worker renews its messages, docs/operations.md)
    job_lock_seconds: int = Field(120, ge=5)
    task_time_limit_seconds: int = Field(3000, ge=10)
    broker_visibility_timeout_seconds: int = Field(300, ge=20)
    # beat and worker heartbeats in Redis; `leadsync health` calls one stale after 2 intervals
    heartbeat_seconds: int = Field(30, ge=1, le=3600)
    # `leadsync health`/`check`: queued work older than this means no worker takes it
    health_queue_max_age_minutes: int = Field(15, ge=1, le=7 * 24 * 60)

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, v: object) -> object:
        if isinstance(v, str):
            v = v.strip().upper()
            if v == "WARN":
                return "WARNING"
            if v not in LOG_LEVELS:
                raise ValueError(f"expected one of {', '.join(LOG_LEVELS)} (any case)")
        return v

    @field_validator("redis_url", "rules_file", "sandbox_stats_url", mode="before")
    @classmethod
    def _blank(cls, v: object) -> object:
        return _blank_is_none(v)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        return None if v is None else check_redis_url(v)

    @field_validator("rules_file")
    @classmethod
    def _rules_file(cls, v: Path | None) -> Path | None:
        return None if v is None else _readable_file(v, "a rules file (YAML, docs/scoring.md)")

    @model_validator(mode="after")
    def _timing(self) -> Settings:
        problems = timing_problems(self.job_lock_seconds, self.task_time_limit_seconds,
                                   self.broker_visibility_timeout_seconds)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        zone_of(v)
        return v

    @property
    def zone(self) -> ZoneInfo:
        """`timezone` as a tzinfo (validated on load)."""
        return zone_of(self.timezone)


def soft_time_limit(hard: int) -> int:
    """The Celery soft time limit for a hard limit: 90 % of it (at least 5 s less)."""
    return max(5, hard - max(5, hard // 10))


def timing_problems(lock: int, hard: int, visibility: int) -> list[str]:
    """What is wrong between the job lock lease, the task time limits and the broker
    visibility timeout (soft < hard; lock < visibility), as messages. The time limit may exceed
    the visibility timeout: the worker renews the visibility of the messages it holds every
    quarter of the timeout (leadsync.tasks.transport), so a running job is never redelivered."""
    out = []
    soft = soft_time_limit(hard)
    if not soft < hard:
        out.append(f"LEADSYNC_TASK_TIME_LIMIT_SECONDS ({hard}) leaves no room for the soft "
                   f"limit ({soft}); expected at least 10")
    if lock >= visibility:
        out.append(f"LEADSYNC_JOB_LOCK_SECONDS ({lock}) must be less than "
                   f"LEADSYNC_BROKER_VISIBILITY_TIMEOUT_SECONDS ({visibility}): a crashed "
                   "worker's lock must expire before its job is redelivered, or the redelivered "
                   "job is skipped as locked (the lock is extended between phases, so it need "
                   "not cover the whole time limit)")
    return out


def check_redis_url(value: str) -> str:
    """A Redis URL's shape (scheme, host, port, db); the message never echoes it (passwords)."""
    expected = "expected redis://[:password@]host:port/db, rediss://... or unix:///path.sock"
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"not a valid URL (bad port?); {expected}") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        scheme = parts.scheme[:20] or "none"
        raise ValueError(f"scheme {scheme!r} is not redis, rediss or unix; {expected}")
    if parts.scheme != "unix":
        if not parts.hostname:
            raise ValueError(f"no host; {expected}")
        if port == 0:
            raise ValueError(f"port 0; {expected}")
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError(f"database {db[:20]!r} is not a number; {expected}")
    return value.strip()


def _env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(p) for p in loc if not isinstance(p, int)).upper()


def _message(err: Any) -> str:
    """One pydantic error in the project's words: what is wrong and what is expected."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    words = {
        "int_parsing": "expected a whole number",
        "int_from_float": "expected a whole number",
        "float_parsing": "expected a number",
        "bool_parsing": "expected true or false",
        "string_type": "expected text",
        "dict_type": "expected a JSON object",
        "path_type": "expected a file path",
        "missing": "required",
    }
    if kind in words:
        return words[kind]
    limits = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "more than"),
              "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}
    if kind in limits:
        key, text = limits[kind]
        return f"expected a number {text} {ctx.get(key)}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}".replace("'", "")
    return str(err["msg"]).replace("Value error, ", "")


def _bad_json_variable(environ: dict[str, str]) -> str:
    """The LEADSYNC_* variable whose JSON value could not be decoded (pydantic-settings names
    only the top-level field), with the decoder's line and column."""
    for name, value in sorted(environ.items()):
        if not name.upper().startswith(ENV_PREFIX) or value.strip()[:1] not in ("{", "["):
            continue
        try:
            json.loads(value)
        except ValueError as exc:
            return f"{name.upper()}: not valid JSON ({exc}); expected a JSON object"
    return "a LEADSYNC_* variable holds a value that is not valid JSON; expected a JSON object"


def known_variables(model: type[BaseModel] | None = None, prefix: str = ENV_PREFIX) -> set[str]:
    """Every LEADSYNC_* variable name a setting is read from (nested with `__`)."""
    out: set[str] = set()
    for name, info in (model or Settings).model_fields.items():
        full = prefix + name.upper()
        out.add(full)
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out |= known_variables(kind, full + "__")
    return out


def misspelt_variables(environ: dict[str, str]) -> list[str]:
    """LEADSYNC_* names that are a known setting but for their underscores (the usual slip:
    `LEADSYNC_HUBSPOT_ACCESS_TOKEN` for `LEADSYNC_HUBSPOT__ACCESS_TOKEN`): silently ignored,
    they would disable a CRM or keep a default."""
    known = known_variables()
    squeezed = {k.replace("_", ""): k for k in known}
    out = []
    for name in sorted(environ):
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) and upper not in known:
            meant = squeezed.get(upper.replace("_", ""))
            if meant:
                out.append(f"{name} is not a setting; did you mean {meant}? (nested names use "
                           "a double underscore)")
    return out


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and check them as a whole; raise SettingsError
    naming each bad variable, what is wrong and what is expected (values are not echoed,
    secrets never)."""
    misspelt = misspelt_variables(dict(os.environ))
    if misspelt:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(misspelt))
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except SourceError:
        raise SettingsError("invalid settings:\n  " + _bad_json_variable(dict(os.environ))
                            ) from None
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            message = _message(err)
            named = loc and not message.startswith(ENV_PREFIX)  # a message naming its own
            lines.append(f"{_env_name(loc)}: {message}" if named else message)
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
