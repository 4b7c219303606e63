"""Rolling-window limiters (in memory and shared through Redis) and the Salesforce budget."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

import pytest

from leadsync.connectors.base import BudgetExhausted
from leadsync.connectors.ratelimit import (
    DailyBudget,
    InMemoryWindowLimiter,
    RedisWindowLimiter,
    parse_limit_info,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_in_memory_window_admits_limit_then_waits_for_oldest_to_leave() -> None:
    clock = FakeClock()
    limiter = InMemoryWindowLimiter(3, 10.0, monotonic=clock.monotonic, sleep=clock.sleep)
    for _ in range(3):
        limiter.acquire()
    assert clock.now == 1000.0
    limiter.acquire()  # must wait until the first entry is 10 s old
    assert clock.now == pytest.approx(1010.0)


def test_in_memory_window_never_exceeds_limit_in_any_window() -> None:
    clock = FakeClock()
    limiter = InMemoryWindowLimiter(5, 1.0, monotonic=clock.monotonic, sleep=clock.sleep)
    stamps = []
    for _ in range(40):
        limiter.acquire()
        stamps.append(clock.now)
        clock.now += 0.05
    for i, t in enumerate(stamps):
        assert sum(1 for s in stamps[i:] if s < t + 1.0) <= 5


def test_bad_limiter_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="limit >= 1"):
        InMemoryWindowLimiter(0, 10)


@pytest.fixture()
def redis_db():  # type: ignore[no-untyped-def]
    redis = pytest.importorskip("redis")
    url = os.environ.get("LEADSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {url}: {type(exc).__name__}")
    client.flushdb()
    yield client
    client.flushdb()


@pytest.mark.redis
def test_redis_window_is_shared_by_several_workers(redis_db) -> None:  # type: ignore[no-untyped-def]
    """Three 'workers' with their own limiter objects draw from one window of 6 per 0.5 s."""
    admitted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        limiter = RedisWindowLimiter(redis_db, "test:window", 6, 0.5)
        for _ in range(6):
            limiter.acquire()
            with lock:
                admitted.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    admitted.sort()
    assert len(admitted) == 18
    # 18 requests at 6 per 0.5 s need at least two further windows
    assert admitted[-1] - admitted[0] >= 0.9
    for i, t in enumerate(admitted):
        assert sum(1 for s in admitted[i:] if s < t + 0.45) <= 6


def test_parse_limit_info() -> None:
    assert parse_limit_info("api-usage=25/15000") == (25, 15000)
    assert parse_limit_info("api-usage=1/100; per-app-api-usage=1/50(appName=x)") == (1, 100)
    assert parse_limit_info("garbage") is None
    assert parse_limit_info(None) is None


def _clock() -> datetime:
    return datetime(2026, 11, 1, 12, tzinfo=UTC)


def test_daily_budget_stops_at_our_share() -> None:
    budget = DailyBudget(0.1, clock=_clock)
    budget.check()  # limit unknown yet: allowed
    budget.observe("api-usage=10/100")
    for _ in range(10):
        budget.check()
        budget.record_call()
    with pytest.raises(BudgetExhausted, match="10/10 calls"):
        budget.check()


def test_daily_budget_stops_when_org_is_out() -> None:
    budget = DailyBudget(1.0, clock=_clock)
    budget.observe("api-usage=100/100")
    with pytest.raises(BudgetExhausted, match="daily API limit reached"):
        budget.check()


@pytest.mark.redis
def test_daily_budget_is_shared_through_redis(redis_db) -> None:  # type: ignore[no-untyped-def]
    first = DailyBudget(0.05, redis=redis_db, clock=_clock)
    second = DailyBudget(0.05, redis=redis_db, clock=_clock)
    for b in (first, second):
        b.observe("api-usage=0/100")
    for _ in range(2):
        first.record_call()
        second.record_call()
    first.check()
    second.check()
    first.record_call()  # the fifth call of the day, by either worker, spends the share
    assert second.spent_today() == 5
    with pytest.raises(BudgetExhausted):
        second.check()


# -- the Salesforce budget over a rolling 24 h, atomic, per org ----------------------------------


class WallClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def budget_redis(request):  # type: ignore[no-untyped-def]
    if request.param == "memory":
        return None
    return request.getfixturevalue("redis_db")


def test_budget_window_is_rolling_24_hours_not_the_utc_day(budget_redis) -> None:  # type: ignore[no-untyped-def]
    clock = WallClock(datetime(2026, 11, 1, 23, 0, tzinfo=UTC))
    budget = DailyBudget(0.1, redis=budget_redis, clock=clock)
    budget.observe("api-usage=0/100")  # allowance 10
    for _ in range(6):
        budget.spend()
    clock.now = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # after UTC midnight: still counted
    for _ in range(4):
        budget.spend()
    with pytest.raises(BudgetExhausted, match="10/10 calls in the last 24 h"):
        budget.spend()
    assert budget.spent_today() == 10
    clock.now = datetime(2026, 11, 2, 23, 30, tzinfo=UTC)  # 24.5 h after 23:00: still inside
    with pytest.raises(BudgetExhausted):
        budget.spend()
    clock.now = datetime(2026, 11, 3, 0, 0, tzinfo=UTC)  # 25 h later: the six calls left
    assert budget.spent_today() == 4
    for _ in range(6):
        budget.spend()
    with pytest.raises(BudgetExhausted):
        budget.spend()
    assert budget.spent_today() == 10


def test_concurrent_spenders_never_exceed_the_budget(budget_redis) -> None:  # type: ignore[no-untyped-def]
    clock = WallClock(datetime(2026, 11, 1, 12, tzinfo=UTC))
    shared = DailyBudget(0.5, redis=budget_redis, clock=clock)  # in memory: one per process
    admitted: list[int] = []
    guard = threading.Lock()

    def worker() -> None:
        budget = shared if budget_redis is None else DailyBudget(
            0.5, redis=type(budget_redis).from_url(os.environ.get(
                "LEADSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")), clock=clock)
        budget.observe("api-usage=0/200")  # allowance 100
        ok = 0
        for _ in range(60):
            try:
                budget.spend()
                ok += 1
            except BudgetExhausted:
                pass
        with guard:
            admitted.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(admitted) == 100  # 240 attempts, exactly the allowance admitted
    assert shared.spent_today() == 100


@pytest.mark.redis
def test_a_fresh_worker_knows_the_budget_is_spent_without_a_call(redis_db) -> None:  # type: ignore[no-untyped-def]
    clock = WallClock(datetime(2026, 11, 1, 12, tzinfo=UTC))
    first = DailyBudget(0.05, redis=redis_db, clock=clock)
    first.observe("api-usage=0/100")  # allowance 5
    for _ in range(5):
        first.spend()
    fresh = DailyBudget(0.05, redis=redis_db, clock=clock)  # has seen no response yet
    with pytest.raises(BudgetExhausted, match="5/5"):
        fresh.spend()
    assert fresh.spent_today() == 5


def test_org_out_of_calls_pauses_every_caller_for_an_hour(budget_redis) -> None:  # type: ignore[no-untyped-def]
    clock = WallClock(datetime(2026, 11, 1, 12, tzinfo=UTC))
    first = DailyBudget(1.0, redis=budget_redis, clock=clock)
    first.observe("api-usage=100/100")
    other = first if budget_redis is None else DailyBudget(1.0, redis=budget_redis, clock=clock)
    with pytest.raises(BudgetExhausted, match="daily API limit reached"):
        other.spend()
    clock.now = datetime(2026, 11, 1, 13, 1, tzinfo=UTC)
    other.spend()  # one probe an hour later
    assert other.spent_today() == 1
