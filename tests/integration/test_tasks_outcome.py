"""The Celery tasks' results carry the same outcome as `leadsync sync --once` (ok,
stopped_reason, exit_code, redacted errors), so an operator reads it in Flower."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from celery import Celery

from leadsync import exitcodes
from leadsync.config.settings import Settings
from leadsync.connectors.base import BudgetExhausted
from leadsync.lease import PEOPLE_LOCK
from leadsync.state import Lock
from leadsync.tasks.celery_app import TASK_INCREMENTAL, TASK_SLA, create_app
from leadsync.tasks.jobs import ContextHolder, register_tasks
from tests.integration.test_tasks_shells import FakeContext


class ReportingContext(FakeContext):
    def __init__(self) -> None:
        super().__init__()
        self.extra: dict[str, Any] = {}

    def run_job(self, job: str, *, lock: Lock, record_keys: Sequence[str] | None = None
                ) -> Mapping[str, Any]:
        return {**super().run_job(job, lock=lock, record_keys=record_keys), **self.extra}


@pytest.fixture
def ctx() -> ReportingContext:
    return ReportingContext()


@pytest.fixture
def app(ctx: ReportingContext) -> Celery:
    celery_app = create_app(Settings(redis_url="redis://127.0.0.1:6379/13"))
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    register_tasks(celery_app, ContextHolder(lambda: ctx))
    return celery_app


def run(app: Celery, name: str) -> dict[str, Any]:
    result: dict[str, Any] = app.tasks[name].apply_async().get()
    return result


def test_a_clean_job_is_ok(app: Celery, ctx: ReportingContext) -> None:
    result = run(app, TASK_INCREMENTAL)
    assert (result["ok"], result["exit_code"], result["stopped_reason"]) == (True, 0, None)
    assert "errors" not in result
    assert ctx.reports == [result]


def test_failed_records_give_exit_code_1_and_redacted_reasons(app: Celery,
                                                              ctx: ReportingContext) -> None:
    ctx.extra = {"failed": {"hubspot": 3}, "failures": [
        {"record": "hubspot:contact:1", "reason": "PROPERTY_DOESNT_EXIST: leadsync_score"},
        {"record": "hubspot:contact:2", "reason": "PROPERTY_DOESNT_EXIST: leadsync_score"},
        {"record": "hubspot:contact:3", "reason": "INVALID_EMAIL: taro@corp.example"},
    ]}
    result = run(app, TASK_SLA)
    assert (result["ok"], result["exit_code"]) == (False, exitcodes.FAILED_RECORDS)
    assert result["failed"] == {"hubspot": 3}
    assert result["errors"] == ["PROPERTY_DOESNT_EXIST: leadsync_score",
                                "INVALID_EMAIL: <email>"]


def test_failed_tasks_count_too(app: Celery, ctx: ReportingContext) -> None:
    ctx.extra = {"task_failures": [{"key": "k1", "reason": "INVALID_CROSS_REFERENCE_KEY"}]}
    result = run(app, TASK_INCREMENTAL)
    assert (result["ok"], result["exit_code"]) == (False, exitcodes.FAILED_RECORDS)
    assert result["errors"] == ["INVALID_CROSS_REFERENCE_KEY"]


def test_stopped_early_gives_exit_code_3(app: Celery, ctx: ReportingContext) -> None:
    ctx.extra = {"stopped_reason": "lock_lost", "failed": {"salesforce": 1}}
    result = run(app, TASK_INCREMENTAL)
    assert (result["ok"], result["exit_code"], result["stopped_reason"]) == (
        False, exitcodes.STOPPED_EARLY, "lock_lost")
    ctx.extra = {}
    ctx.errors = [BudgetExhausted("REQUEST_LIMIT_EXCEEDED")]
    result = run(app, TASK_INCREMENTAL)
    assert (result["ok"], result["exit_code"], result["stopped_reason"]) == (
        False, exitcodes.STOPPED_EARLY, "budget")


def test_skipped_when_locked_is_ok_and_poison_is_not(app: Celery, ctx: ReportingContext) -> None:
    held = ctx.state.lock(PEOPLE_LOCK, 30)
    assert held.acquire()
    result = run(app, TASK_INCREMENTAL)
    assert (result["skipped"], result["ok"], result["exit_code"]) == ("locked", True, 0)
    held.release()
    ctx.deliveries["poison-2:0"] = 3
    result = app.tasks[TASK_INCREMENTAL].apply_async(task_id="poison-2").get()
    assert (result["skipped"], result["ok"], result["exit_code"]) == (
        "poison", False, exitcodes.FAILED_RECORDS)
