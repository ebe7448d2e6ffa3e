"""discover measures IAM's job cap before deciding the lanes: the plan's first jobs started through the
shared limits (one probe at a time, stopping at the first refusal), handed to the first lanes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lambdas.collector.collect.discover import batches
from lambdas.collector.collect.jobs import start_batch
from lambdas.collector.collect.limits import Ceiling, LimitState, MemoryLimitStore, release
from lambdas.collector.collect.pacing import Pacer
from lambdas.collector.collect.warm_up import WarmUp
from lambdas.collector.models import Batch, BatchState, Job, JobStatus, Target
from lambdas.collector.settings import Pace
from tests.fakes import FakeClock, FakeIam, FakeS3, as_iam, as_s3, run_context, targets
from tests.helpers import budget as make_budget
from tests.helpers import limits

CEILING = Ceiling(jobs=50, calls_per_second=20.0)


def _warm_up(clock: FakeClock, iam: FakeIam) -> WarmUp:
    return WarmUp(iam=lambda: as_iam(iam), clock=clock.now, sleep=clock.sleep, throttle_count=lambda: 0)


@pytest.mark.parametrize(
    ("cap", "started", "refusals"),
    [(1, 1, 1), (5, 5, 1), (1000, 50, 0)],
    ids=["one job at a time", "five at a time", "more than the ceiling"],
)
def test_the_first_jobs_are_started_up_to_the_cap_with_one_refusal_at_most(
    cap: int, started: int, refusals: int
) -> None:
    # Given nothing learned yet (one job admitted) and IAM admitting `cap` jobs at once
    clock = FakeClock()
    iam = FakeIam(clock, latency=10.0, cap=cap)
    store = MemoryLimitStore()
    # When discover starts the plan's first jobs, up to the ceiling
    jobs = _warm_up(clock, iam)(targets(200), store, CEILING, run_id="run-1", seconds=60)
    # Then it started as many as IAM admits (up to the ceiling), each once, and learned that level
    assert len(jobs) == iam.count("generate") == started
    assert iam.count("refused") == refusals
    assert store.state.admitted == started
    assert all(job.status is JobStatus.IN_PROGRESS and job.job_id and job.iam_calls == 1 for job in jobs)
    assert [job.target for job in jobs] == targets(200)[:started]
    # and every job holds its lease, for the lane that reads it to release
    assert len(store.state.live(clock.now().timestamp())) == started


def test_with_no_probe_due_only_the_admitted_level_is_started() -> None:
    clock = FakeClock()
    iam = FakeIam(clock, latency=10.0, cap=1000)
    store = MemoryLimitStore(LimitState(admitted=3, next_probe=clock.now().timestamp() + 3600))
    jobs = _warm_up(clock, iam)(targets(20), store, CEILING, run_id="run-1", seconds=60)
    assert len(jobs) == 3
    assert iam.count("refused") == 0
    assert store.state.admitted == 3


def test_discover_starts_jobs_no_longer_than_the_first_report_is_expected_to_take() -> None:
    # Given IAM admitting more than the ceiling, and calls paced at 20 a second
    clock = FakeClock()
    iam = FakeIam(clock, latency=10.0, cap=1000)
    store = MemoryLimitStore()
    # When discover may start jobs for one second
    jobs = _warm_up(clock, iam)(targets(200), store, CEILING, run_id="run-1", seconds=1)
    # Then it started the jobs of one second at the pace (the lanes probe on from there)
    assert 18 <= len(jobs) <= 22
    assert store.state.admitted == len(jobs)


def _started(planned: list[Target], count: int) -> list[Job]:
    """The first `count` targets' jobs, as discover started them."""
    at = FakeClock().now()
    return [
        Job(target=t, status=JobStatus.IN_PROGRESS, job_id=f"{n:036d}", started=at)
        for n, t in enumerate(planned[:count])
    ]


def test_the_started_jobs_are_dealt_round_the_first_wave_and_every_target_is_in_one_batch() -> None:
    planned = targets(40)
    started = _started(planned, 10)
    manifest = batches(planned, size=5, lanes=4, started=started)
    # 8 batches of 5, two waves of 4 lanes; the 10 started jobs go 3-3-2-2 to the first wave
    assert [len(b.targets) for b in manifest] == [5] * 8
    assert [len(b.started) for b in manifest] == [3, 3, 2, 2, 0, 0, 0, 0]
    assert sorted(t.id for b in manifest for t in b.targets) == sorted(t.id for t in planned)
    assert {j.job_id for b in manifest for j in b.started} == {j.job_id for j in started}
    # A batch's jobs: the started ones as they were, the others not started
    jobs = manifest[0].jobs()
    assert [j.status for j in jobs] == [JobStatus.IN_PROGRESS] * 3 + [JobStatus.NOT_STARTED] * 2


def test_more_started_jobs_than_the_first_wave_holds_spill_into_the_next_batches() -> None:
    planned = targets(12)
    started = _started(planned, 7)
    manifest = batches(planned, size=2, lanes=2, started=started)
    assert [len(b.started) for b in manifest] == [2, 2, 2, 1, 0, 0]
    assert sum(len(b.targets) for b in manifest) == 12


def test_a_batch_refuses_a_started_job_that_is_not_one_of_its_targets_or_not_in_progress() -> None:
    one, other = targets(2)
    running = Job(target=other, status=JobStatus.IN_PROGRESS, job_id="0" * 36)
    with pytest.raises(ValidationError, match="not an IN_PROGRESS job of one of the batch's targets"):
        Batch(batch=0, targets=[one], started=[running])
    with pytest.raises(ValidationError, match="not an IN_PROGRESS job"):
        Batch(batch=0, targets=[one], started=[Job(target=one)])


def test_a_lane_whose_start_is_not_granted_waits_in_the_invocation_for_a_slot_another_lane_frees() -> None:
    # Given IAM admitting one job, held by another lane's job that finishes 5 s from now
    clock = FakeClock()
    iam = FakeIam(clock, latency=1.0)
    no_probe = clock.now().timestamp() + 3600
    store = MemoryLimitStore(
        LimitState(admitted=1, next_probe=no_probe, leases={"other-lane": clock.now().timestamp() + 900})
    )
    release_at = clock.now().timestamp() + 5

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now().timestamp() >= release_at and "other-lane" in store.state.leases:
            store.state = release(store.state, "other-lane")  # the other lane read its job

    polling = Pace().polling
    shared = limits(ceiling=50, clock=clock.now, store=store)
    budget = make_budget(pacer=Pacer(None), clock=clock.now, sleep=sleep, shared=shared)
    state = BatchState(run=run_context(2, polling), batch=0, jobs=[Job(target=t) for t in targets(2)])
    # When this lane's generate runs
    result = start_batch(state, as_iam(iam), as_s3(FakeS3()), budget)
    # Then it waited 1 + 2 + 4 s in the invocation, found the slot free and went on: no refusal, no
    # round through the state machine for the wait
    assert iam.count("refused") == 0
    assert result.started >= 1
    assert iam.calls[0][0] == "generate"
    assert clock.monotonic() >= 7.0
