"""Report latency learned per kind of report: a quick kind is not held to a slow kind's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
