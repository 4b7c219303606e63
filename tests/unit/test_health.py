"""leadsync.tasks.health.judge: every scheduling state, with exact details and limits."""

from __future__ import annotations

import json

import pytest

from leadsync.tasks.health import Beat, Status, judge, unreachable

NOW = 1_800_000_000.0
HB = 30.0  # heartbeat interval: stale after 60 s
QUEUE_MAX = 15 * 60.0


def verdict(status: Status, **kw: object):  # type: ignore[no-untyped-def]
    return judge(status, heartbeat_seconds=HB, max_queue_age_s=QUEUE_MAX, **kw)  # type: ignore[arg-type]


def healthy_status(**changes: object) -> Status:
    base = {"now": NOW, "beat": Beat("beat", NOW - 5),
            "workers": (Beat("w1@a", NOW - 3, host="a", held=1),), "queued": 0}
    return Status(**{**base, **changes})  # type: ignore[arg-type]


def test_all_healthy() -> None:
    v = verdict(healthy_status())
    assert v.healthy
    assert v.line() == "healthy: beat ticked 5s ago; worker 1 live: w1@a 3s ago; queue empty"


@pytest.mark.parametrize(("age", "ok"), [(59.0, True), (60.0, True), (60.5, False)])
def test_beat_is_stale_after_two_intervals(age: float, ok: bool) -> None:
    v = verdict(healthy_status(beat=Beat("beat", NOW - age)), only=("beat",))
    assert v.healthy is ok
    if not ok:
        assert v.line() == "unhealthy: beat silent for 60s (limit 60s)"


def test_no_beat_heartbeat_at_all() -> None:
    v = verdict(healthy_status(beat=None))
    assert not v.healthy
    assert v.line() == "unhealthy: beat no heartbeat: beat is not running"
    assert [c.ok for c in v.checks] == [False, True, True]


def test_no_live_worker_names_the_last_heartbeat() -> None:
    v = verdict(healthy_status(workers=(Beat("w1@a", NOW - 400, host="a"),
                                        Beat("w2@b", NOW - 90, host="b"))))
    assert v.line() == "unhealthy: worker no live worker: last heartbeat 90s ago (limit 60s)"
    assert verdict(healthy_status(workers=())).line() == \
        "unhealthy: worker no live worker: no heartbeat"


def test_local_counts_only_this_hosts_workers() -> None:
    status = healthy_status(workers=(Beat("w1@a", NOW - 3, host="a"),
                                     Beat("w2@b", NOW - 200, host="b")))
    assert verdict(status, only=("worker",), host="a").healthy
    mine = verdict(status, only=("worker",), host="b")
    assert mine.line() == "unhealthy: worker no live worker on b: last heartbeat 3m ago " \
                          "(limit 60s)"
    assert verdict(status, only=("worker",), host="c").line() == \
        "unhealthy: worker no live worker on c: no heartbeat"


@pytest.mark.parametrize(("age", "ok"), [(14 * 60, True), (15 * 60, True), (15 * 60 + 1, False)])
def test_queued_work_older_than_the_limit(age: float, ok: bool) -> None:
    v = verdict(healthy_status(queued=3, oldest_sent_at=NOW - age), only=("queue",))
    assert v.healthy is ok
    if not ok:
        assert v.line() == ("unhealthy: queue 3 queued, oldest 15m old (limit 15m): "
                            "no worker takes work")


def test_unstamped_queued_work_is_counted_not_judged() -> None:
    v = verdict(healthy_status(queued=2, oldest_sent_at=None), only=("queue",))
    assert v.healthy and v.line() == "healthy: queue 2 queued"


def test_failing_checks_come_first_in_the_line_and_only_selects() -> None:
    status = healthy_status(beat=None, workers=())
    v = verdict(status, only=("queue", "beat"))
    assert [c.what for c in v.checks] == ["beat", "queue"]
    assert v.line() == "unhealthy: beat no heartbeat: beat is not running"


def test_unreachable_redis_is_one_failing_check() -> None:
    v = unreachable("unreachable (ConnectionError)")
    assert not v.healthy and v.line() == "unhealthy: redis unreachable (ConnectionError)"


def test_read_status_from_redis_keys() -> None:
    """The reader against a fake Redis holding what heartbeat.py and kombu write."""
    from leadsync.tasks.health import read_status

    class FakeRedis:
        def __init__(self) -> None:
            self.data = {
                "leadsync:heartbeat:beat": json.dumps({"at": NOW - 4, "host": "h", "pid": 7}),
                "leadsync:heartbeat:worker:w1@h": json.dumps({"at": NOW - 2, "host": "h",
                                                               "held": 2}),
                "leadsync:heartbeat:worker:w2@h": "not json",
            }
            self.lists = {
                "leadsync": [json.dumps({"headers": {"leadsync_sent_at": NOW - 30}}),
                             json.dumps({"headers": {"leadsync_sent_at": NOW - 100}})],
                "leadsync\x06\x169": [json.dumps({"headers": {}})]}

        def get(self, key: str) -> str | None:
            return self.data.get(key)

        def scan_iter(self, match: str, count: int) -> list[str]:
            return [k for k in self.data if k.startswith(match.rstrip("*"))]

        def mget(self, keys: list[str]) -> list[str | None]:
            return [self.data.get(k) for k in keys]

        def llen(self, key: str) -> int:
            return len(self.lists.get(key, []))

        def lindex(self, key: str, index: int) -> str:
            return self.lists[key][index]

    status = read_status(FakeRedis(), now=NOW)
    assert status.beat == Beat("beat", NOW - 4, host="h")
    assert status.workers == (Beat("w1@h", NOW - 2, host="h", held=2),)
    assert (status.queued, status.oldest_sent_at) == (3, NOW - 100)
