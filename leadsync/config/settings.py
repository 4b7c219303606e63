"""Settings from the environment (DESIGN.md §7): prefix LEADSYNC_, nested with `__`.

Built once at the composition root (`cli`, `tasks`) with `load_settings()` and passed in.
Secrets are `SecretStr`; `SettingsError` names the variable at fault and never echoes a value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "LEADSYNC_"


class SettingsError(Exception):
    """A bad or missing setting; the message names the environment variable and what is expected."""


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


class HubSpotSettings(BaseModel):
    access_token: SecretStr | None = None
    base_url: str = "https://api.hubapi.com"
    rate_limit_per_10s: int = Field(100, ge=1, le=1000)
    rate_limit_share: float = Field(0.8, gt=0, le=1)  # of the 10 s window leadsync may use
    search_per_second: float = Field(4.0, gt=0, le=50)
    timeout_seconds: float = Field(30.0, gt=0)
    fields: HubSpotFieldNames = HubSpotFieldNames()

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
    # Lead Status (sales-owned picklist) -> normalised sales_status; case-insensitive keys
    status_map: dict[str, str] = {
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
    fields: SalesforceFieldNames = SalesforceFieldNames()

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        if not v or "/" in v or " " in v:
            raise ValueError("expected 'login', 'test' or '<mydomain>.my'")
        return v

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
    # IANA zone of the times people read: task subjects and bodies, the demo's tables
    timezone: str = "UTC"
    sandbox_stats_url: str | None = None  # informational: printed by `leadsync sandbox serve`
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Celery worker (leadsync.tasks): job lock lease (extended between pipeline phases), hard
    # task time limit (soft limit: 90 %), and the broker visibility timeout, which must exceed it
    job_lock_seconds: int = Field(600, ge=5)
    task_time_limit_seconds: int = Field(3000, ge=10)
    broker_visibility_timeout_seconds: int = Field(3600, ge=20)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        zone_of(v)
        return v

    @property
    def zone(self) -> ZoneInfo:
        """`timezone` as a tzinfo (validated on load)."""
        return zone_of(self.timezone)


def _env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(p) for p in loc if not isinstance(p, int)).upper()


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise SettingsError naming each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = _env_name(tuple(err["loc"]))
            lines.append(f"{name}: {err['msg']} (expected {err['type'].replace('_', ' ')})")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
