"""leadsync.owner_fallback over a fake connector: which refusals are resent, to whom, and how
many create calls that costs (exactly one per run with refusals, none without)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from leadsync.config.settings import SlaSettings
from leadsync.connectors.base import FollowUpTask, RecordRef, TaskResult
from leadsync.owner_fallback import (
    NO_FALLBACK,
    fallback_owner_id,
    is_owner_fault,
    reassign_refused,
)

GONE, FALLBACK = "005GONE", "005BOSS"


class FakeCrm:
    """Refuses tasks whose owner is in `refused_owners` the way Salesforce does."""

    system = "salesforce"

    def __init__(self, refused_owners: set[str]) -> None:
        self.refused_owners = refused_owners
        self.calls: list[list[tuple[str, str | None]]] = []

    def create_tasks(self, tasks: Sequence[FollowUpTask]) -> TaskResult:
        self.calls.append([(t.key, t.owner_id) for t in tasks])
        out = TaskResult()
        for t in tasks:
            if t.owner_id in self.refused_owners:
                out.failed[t.key] = (f"INACTIVE_OWNER_OR_USER: operation performed with "
                                     f"inactive user [{t.owner_id}] as owner of task")
            else:
                out.created[t.key] = f"00T{t.key}"
        return out


def task(key: str, owner: str | None) -> FollowUpTask:
    return FollowUpTask(key=key, person=RecordRef("salesforce", "Lead", f"00Q{key}"),
                        owner_id=owner, subject="s", body="b",
                        due=datetime(2026, 12, 6, tzinfo=UTC), priority="normal")


def first_pass(crm: FakeCrm, tasks: list[FollowUpTask]) -> TaskResult:
    return crm.create_tasks(tasks)


def test_refused_tasks_are_resent_once_to_the_fallback_owner() -> None:
    crm = FakeCrm({GONE})
    tasks = [task("k1", GONE), task("k2", "005OK"), task("k3", GONE)]
    result = reassign_refused(crm, tasks, first_pass(crm, tasks), FALLBACK)
    assert crm.calls == [[("k1", GONE), ("k2", "005OK"), ("k3", GONE)],
                         [("k1", FALLBACK), ("k3", FALLBACK)]]
    assert result.created == {"k1": "00Tk1", "k2": "00Tk2", "k3": "00Tk3"}
    assert result.failed == {}


def test_without_a_fallback_owner_the_refusal_is_reported_and_nothing_resent() -> None:
    crm = FakeCrm({GONE})
    tasks = [task("k1", GONE), task("k2", "005OK")]
    result = reassign_refused(crm, tasks, first_pass(crm, tasks), None)
    assert len(crm.calls) == 1
    assert result.created == {"k2": "00Tk2"}
    assert list(result.failed) == ["k1"]
    assert result.failed["k1"].startswith("INACTIVE_OWNER_OR_USER: ")
    assert result.failed["k1"].endswith(NO_FALLBACK)


def test_a_refused_fallback_owner_is_not_tried_twice() -> None:
    crm = FakeCrm({GONE, FALLBACK})
    tasks = [task("k1", FALLBACK), task("k2", GONE)]
    result = reassign_refused(crm, tasks, first_pass(crm, tasks), FALLBACK)
    assert crm.calls[1] == [("k2", FALLBACK)]  # k1 already was the fallback owner's
    assert len(crm.calls) == 2
    assert set(result.failed) == {"k1", "k2"}
    assert result.failed["k1"].endswith("; refused for the fallback owner too")


def test_other_failures_are_left_alone() -> None:
    crm = FakeCrm(set())
    tasks = [task("k1", "005OK")]
    failed = TaskResult(failed={"k1": "STRING_TOO_LONG: Subject: data value too large"})
    assert reassign_refused(crm, tasks, failed, FALLBACK) is failed
    assert crm.calls == []


def test_owner_fault_codes_of_both_crms() -> None:
    assert is_owner_fault("INVALID_CROSS_REFERENCE_KEY: invalid cross reference id")
    assert is_owner_fault("INACTIVE_OWNER_OR_USER: operation performed with inactive user")
    assert is_owner_fault('VALIDATION_ERROR: Property values were not valid: [{"error": '
                          '"INVALID_OWNER_ID", "name": "hubspot_owner_id"}]')
    assert not is_owner_fault("UNABLE_TO_LOCK_ROW: unable to obtain exclusive access")


QUEUE = "00G5g0000000001EAA"


@pytest.mark.parametrize(("reason", "owner", "fault"), [
    (f"FIELD_INTEGRITY_EXCEPTION: Assigned To ID: id value of incorrect type: {QUEUE}", QUEUE,
     True),  # a queue that owns no Tasks
    (f"FIELD_INTEGRITY_EXCEPTION: Assigned To ID: id value of incorrect type: {QUEUE}", None,
     False),
    ("FIELD_INTEGRITY_EXCEPTION: What ID: id value of incorrect type: 0015g00000AAA", QUEUE,
     False),  # another field's integrity: not the owner's
])
def test_field_integrity_is_an_owner_fault_only_when_it_names_the_owner(
        reason: str, owner: str | None, fault: bool) -> None:
    assert is_owner_fault(reason, owner) is fault


def test_a_task_refused_for_a_queue_goes_to_the_fallback_owner() -> None:
    crm = FakeCrm(set())
    tasks = [task("k1", QUEUE)]
    refused = TaskResult(failed={"k1": "FIELD_INTEGRITY_EXCEPTION: Assigned To ID: id value of "
                                       f"incorrect type: {QUEUE}"})
    result = reassign_refused(crm, tasks, refused, FALLBACK)
    assert crm.calls == [[("k1", FALLBACK)]]
    assert (result.created, result.failed) == ({"k1": "00Tk1"}, {})


def test_fallback_owner_id_by_email_case_insensitive() -> None:
    owners = {"boss@corp.example": FALLBACK}
    assert fallback_owner_id(SlaSettings(fallback_owner="Boss@Corp.example"), owners) == FALLBACK
    assert fallback_owner_id(SlaSettings(), owners) is None
    assert fallback_owner_id(SlaSettings(fallback_owner="x@corp.example"), owners) is None
