"""The emulator's small parts: token bucket, clock, sort orders, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from iam_report_emulator.clock import EmulatorClock
from iam_report_emulator.reports_content import AccessDetail, sort_details
from iam_report_emulator.settings import ReportSettings
from iam_report_emulator.throttling import RateLimit, Throttler

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_token_bucket_allows_its_burst_then_its_rate() -> None:
    clock = EmulatorClock()
    clock.freeze(T0)
    throttler = Throttler(clock.now)
    throttler.configure(limits={"Op": RateLimit(rate=2, burst=3)})
    assert [throttler.admit("Op") for _ in range(4)] == [True, True, True, False]
    clock.advance(0.5)  # one token back at 2 per second
    assert [throttler.admit("Op") for _ in range(2)] == [True, False]
    assert throttler.admit("Other")  # no limit configured
    assert throttler.counters.calls == {"Op": 6, "Other": 1}
    assert throttler.counters.throttled == {"Op": 2}


def test_operations_grouped_in_a_tuple_share_one_bucket() -> None:
    clock = EmulatorClock()
    clock.freeze(T0)
    throttler = Throttler(clock.now)
    throttler.configure(limits={("A", "B"): RateLimit(rate=1, burst=2), "C": RateLimit(rate=1, burst=1)})
    assert [throttler.admit("A"), throttler.admit("B"), throttler.admit("A"), throttler.admit("C")] == [
        True,
        True,
        False,
        True,
    ]
    clock.advance(1)
    assert [throttler.admit("B"), throttler.admit("A")] == [True, False]
    with pytest.raises(ValueError, match="two rate limits"):
        throttler.configure(limits={("A", "B"): RateLimit(1, 1), "A": RateLimit(1, 1)})


def test_bad_throttle_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        RateLimit(rate=0, burst=1)
    with pytest.raises(ValueError, match="failure_rate"):
        Throttler(EmulatorClock().now).configure(failure_rate=1.5)


def test_the_clock_freezes_advances_and_resumes() -> None:
    clock = EmulatorClock()
    clock.freeze(T0)
    clock.advance(90)
    assert clock.now() == T0 + timedelta(seconds=90)
    clock.resume()
    assert clock.now() - (T0 + timedelta(seconds=90)) < timedelta(seconds=5)
    with pytest.raises(ValueError, match="aware"):
        clock.freeze(datetime(2026, 1, 1))  # noqa: DTZ001 (the naive value under test)


def test_settings_are_validated() -> None:
    for bad in ({"job_seconds": -1}, {"max_jobs_in_progress": 0}, {"short_page_items": 0}, {"job_ids": ["x"]}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ReportSettings(**bad)


def test_time_orders_put_never_used_services_first_ascending_and_last_descending() -> None:
    rows = [
        AccessDetail("b", "B", "us-east-1", "p", T0 + timedelta(days=2), 1),
        AccessDetail("a", "A", None, None, None, 0),
        AccessDetail("c", "C", "us-east-1", "p", T0, 1),
        AccessDetail("d", "D", None, None, None, 0),
    ]

    def names(key: str) -> list[str]:
        return [d.namespace for d in sort_details(rows, key)]

    assert names("SERVICE_NAMESPACE_ASCENDING") == ["a", "b", "c", "d"]
    assert names("SERVICE_NAMESPACE_DESCENDING") == ["d", "c", "b", "a"]
    assert names("LAST_AUTHENTICATED_TIME_ASCENDING") == ["a", "d", "c", "b"]
    # Rows without a time: descending is the exact reverse of ascending (observed live).
    assert names("LAST_AUTHENTICATED_TIME_DESCENDING") == ["b", "c", "d", "a"]
