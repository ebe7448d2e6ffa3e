"""Report latency learned per kind of report: a quick kind is not held to a slow kind's time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from lambdas.collector.collect.latency import JobKind, Latency
from lambdas.collector.models import Job, JobStatus, Target, TargetType
from lambdas.collector.settings import Pace

NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
ROOT = "o-a1b2c3d4e5/r-ab12"


def job(target: Target, started_seconds_ago: float, **changes: object) -> Job:
    started = NOW - timedelta(seconds=started_seconds_ago)
    return Job(target=target, status=JobStatus.IN_PROGRESS, job_id="a" * 36, started=started, **changes)  # type: ignore[arg-type]


ROOT_TARGET = Target(path=ROOT, type=TargetType.ROOT, id="r-ab12")
OU_TARGET = Target(path=f"{ROOT}/ou-ab12-abcdefgh", type=TargetType.ORGANIZATIONAL_UNIT, id="ou-ab12-abcdefgh")
ACCOUNT_TARGET = Target(path=f"{ROOT}/111122223333", type=TargetType.ACCOUNT, id="111122223333")
POLICY_TARGET = Target(path=ROOT, type=TargetType.ROOT, id="r-ab12", policy_id="p-abcd1234")


def test_each_kind_is_read_after_its_own_slowest_report() -> None:
    latency = Latency({}, Pace(poll_initial_wait_seconds=10).polling, lambda: NOW)
    # Before anything completed: the configured first wait, for every kind
    assert latency.due_in(job(POLICY_TARGET, 0)) == 10
    # When a root report took 7 s and a policy-selected one 2 s
    latency.learn(job(ROOT_TARGET, 0), NOW, NOW + timedelta(seconds=7))
    latency.learn(job(POLICY_TARGET, 0), NOW, NOW + timedelta(seconds=2))
    latency.learn(job(POLICY_TARGET, 0), NOW, NOW + timedelta(seconds=1.5))
    assert latency.by_kind == {JobKind.ROOT: 7, JobKind.POLICY: 2}
    # Then a policy-selected job is due after 2 s, a root one after 7, and an OU (unseen) after the slowest
    assert latency.due_in(job(POLICY_TARGET, 1)) == 1
    assert latency.due_in(job(ROOT_TARGET, 1)) == 6
    assert latency.due_in(job(OU_TARGET, 1)) == 6
    # And an account found still running at 9 s raises its kind (only) to half as long again
    latency.learn_running(job(ACCOUNT_TARGET, 9))
    assert (latency.by_kind[JobKind.ACCOUNT], latency.by_kind[JobKind.POLICY]) == (13.5, 2)


def test_kinds_follow_the_target() -> None:
    kinds = [JobKind.of(t) for t in (ROOT_TARGET, OU_TARGET, ACCOUNT_TARGET, POLICY_TARGET)]
    assert kinds == [JobKind.ROOT, JobKind.OU, JobKind.ACCOUNT, JobKind.POLICY]


def test_with_enough_reports_a_job_is_read_first_at_the_kinds_85th_percentile_then_at_its_slowest() -> None:
    latency = Latency({}, Pace(poll_initial_wait_seconds=10).polling, lambda: NOW)
    # Twenty account reports that took 5.0, 5.5, ..., 14.5 s
    for n in range(20):
        latency.learn(job(ACCOUNT_TARGET, 0), NOW, NOW + timedelta(seconds=5 + n / 2))
    assert latency.slowest(job(ACCOUNT_TARGET, 0)) == 14.5
    # A new job is first read at the 17th of 20 (85%): 13 s, not the slowest 14.5 s
    assert latency.due_in(job(ACCOUNT_TARGET, 0)) == 13.0
    # Found still running then, it does not raise the kind's expectation, and is read again at 14.5 s
    latency.learn_running(job(ACCOUNT_TARGET, 13))
    assert latency.slowest(job(ACCOUNT_TARGET, 0)) == 14.5
    again = job(ACCOUNT_TARGET, 13, polls=1, checked=NOW)
    assert latency.due_in(again) == 1.5
    # Found running just short of the slowest: read again a second later, not at half its age again
    assert latency.due_in(job(ACCOUNT_TARGET, 14, polls=1, checked=NOW)) == 1.0
    # Still running at its kind's slowest: the backoff follows its age (half as long again)
    late = job(ACCOUNT_TARGET, 14.5, polls=2, checked=NOW)
    latency.learn_running(late)
    assert latency.due_in(late) == 7.25
    # The samples are bounded (the batch's state stays small), the slowest is kept
    for _ in range(100):
        latency.learn(job(ACCOUNT_TARGET, 0), NOW, NOW + timedelta(seconds=6))
    assert len(latency.samples[JobKind.ACCOUNT]) == 32
    assert latency.due_in(job(ACCOUNT_TARGET, 0)) == 6.0
    assert latency.slowest(job(ACCOUNT_TARGET, 0)) == 14.5


def test_under_the_observed_spread_most_jobs_are_read_once() -> None:
    # Latencies spread like IAM's full reports observed live (4.7-11.7 s): after learning, the share of
    # jobs read a second time is about 1 - FIRST_READ_QUANTILE, and the idle time after completion is
    # well under reading every job at the slowest time.
    rng = random.Random(3)
    latency = Latency({}, Pace(poll_initial_wait_seconds=10).polling, lambda: NOW)
    draws = [rng.uniform(4.7, 9.7) if rng.random() < 0.5 else rng.uniform(9.7, 11.7) for _ in range(400)]
    reads = idle = idle_at_slowest = 0.0
    for took in draws:
        first = latency.expected(job(ACCOUNT_TARGET, 0))
        slowest = latency.slowest(job(ACCOUNT_TARGET, 0))
        reads += 1 if took <= first else 2
        idle += (first if took <= first else max(slowest, took)) - took
        idle_at_slowest += max(slowest, took) - took
        latency.learn(job(ACCOUNT_TARGET, 0), NOW, NOW + timedelta(seconds=took))
    assert reads / len(draws) <= 1.2
    assert idle < 0.85 * idle_at_slowest


def test_a_target_whose_last_report_time_is_known_is_read_first_at_that_time_scaled_by_how_far_off_it_runs() -> None:
    latency = Latency({}, Pace(poll_initial_wait_seconds=10).polling, lambda: NOW)
    for n in range(20):  # account reports of 5.0-14.5 s: the kind's 85th percentile is 13 s
        latency.learn(job(ACCOUNT_TARGET, 0), NOW, NOW + timedelta(seconds=5 + n / 2))
    quick = ACCOUNT_TARGET.model_copy(update={"expected_seconds": 6.0})
    # No prediction checked yet: read at the target's own last time, not the kind's 13 s
    assert latency.due_in(job(quick, 0)) == 6.0
    # Its report took 6.6 s: what was learned, for every lane, includes how far off the prediction was
    learned = latency.learn(job(quick, 0), NOW, NOW + timedelta(seconds=6.6))
    assert learned == pytest.approx({"account": 6.6, "predicted": 1.1})
    # Once enough predictions are checked, they are scaled by their 85th percentile ratio (here 1.1)
    for _ in range(10):
        latency.learn(job(quick, 0), NOW, NOW + timedelta(seconds=6.0))
    assert latency.due_in(job(quick, 0)) == 6.0  # 1 in 11 was off: the quantile is 1.0
    for _ in range(10):
        latency.learn(job(quick, 0), NOW, NOW + timedelta(seconds=6.6))
    assert round(latency.due_in(job(quick, 0)), 6) == 6.6
    # never later than the kind's slowest
    slow = ACCOUNT_TARGET.model_copy(update={"expected_seconds": 40.0})
    assert latency.due_in(job(slow, 0)) == latency.slowest(job(slow, 0)) == 14.5
