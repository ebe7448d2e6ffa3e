"""Sitting on IAM's floor: calls paced to the batch's share, equal batches, polls only when a job is due."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import pytest

from lambdas.collector.collect.discover import batches
from lambdas.collector.collect.jobs import poll_batch, start_batch
from lambdas.collector.collect.pacing import Pacer
from lambdas.collector.models import BatchState, Job, JobStatus
from lambdas.collector.settings import Pace
from tests.fakes import FakeClock, FakeIam, FakeS3, as_iam, as_s3, run_context, targets

if TYPE_CHECKING:
    pass


class FakeTime:
    """A monotonic clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_pacer_spaces_calls_by_its_interval_and_never_sleeps_for_late_calls() -> None:
    time = FakeTime()
    pacer = Pacer(4.0, time.monotonic, time.sleep)
    for _ in range(5):
        pacer()
    assert time.sleeps == [0.25] * 4  # the first call goes at once
    time.now += 10  # a slow call: the next one is already late
    pacer()
    assert time.sleeps == [0.25] * 4
    assert pacer.slept == pytest.approx(1.0)


def test_an_unpaced_pacer_never_sleeps() -> None:
    time = FakeTime()
    pacer = Pacer(None, time.monotonic, time.sleep)
    for _ in range(100):
        pacer()
    assert time.sleeps == []


@pytest.mark.parametrize(
    ("count", "size", "lanes"),
    [(1, 100, 2), (5, 100, 2), (111, 100, 2), (10_111, 100, 2), (250, 250, 1), (1_000, 7, 3), (3, 1, 4)],
)
def test_batches_are_equal_fill_every_lane_and_keep_every_target_once_in_order(
    count: int, size: int, lanes: int
) -> None:
    chosen = targets(count)
    manifest = batches(chosen, size, lanes)
    sizes = [len(batch.targets) for batch in manifest]
    assert [t for batch in manifest for t in batch.targets] == chosen
    assert [batch.batch for batch in manifest] == list(range(len(manifest)))
    assert max(sizes) <= size
    assert max(sizes) - min(sizes) <= 1
    assert len(manifest) % lanes == 0 or len(manifest) == count  # fewer targets than lanes: one each
    assert len(manifest) < -(-count // size) + lanes  # no more batches than filling the lanes needs


def _state(count: int, initial_wait: int) -> BatchState:
    run = run_context(count, Pace(poll_initial_wait_seconds=initial_wait, poll_inline_wait_seconds=10).polling)
    return BatchState(run=run, batch=0, jobs=[Job(target=t) for t in targets(count)])


def test_one_generate_invocation_starts_and_reads_a_whole_batch_without_a_wasted_poll() -> None:
    # Given reports that take 3 s, a first wait of 5 s and a share of 2 calls per second
    clock = FakeClock()
    iam, s3 = FakeIam(clock, latency=3), FakeS3()
    result = start_batch(_state(40, initial_wait=5), as_iam(iam), as_s3(s3), clock.budget(2.0, jobs=8))
    # Then the batch is done in the one invocation: two calls per target, none answered IN_PROGRESS
    assert result.finished == {JobStatus.COMPLETED: 40}
    assert result.state.jobs == []
    assert (iam.count("generate"), iam.count("get"), iam.count("in progress")) == (40, 40, 0)
    assert result.state.latency_by_kind == {"account": 3}  # learned from IAM's dates, per kind of report
    # And the batch never had more than its share of IAM's job cap in progress
    assert iam.in_progress_peak <= 8
    # And the calls kept to the pace, 80 calls at 2 per second, the last job trailing by under its 3 s
    assert 39.5 <= clock.monotonic() < 39.5 + 3


def test_a_slow_job_backs_off_inside_the_invocation_then_goes_back_to_the_state_machine() -> None:
    clock = FakeClock()
    iam, s3 = FakeIam(clock, latency=1_000), FakeS3()
    result = start_batch(_state(1, initial_wait=5), as_iam(iam), as_s3(s3), clock.budget(None))
    # Polled when due (5 s), then each time it has run half as long again: at 7.5, 11.25, 16.9 and 25.3 s;
    # the next wait, 12.7 s, is over the inline wait (10 s): the Wait state's, in whole seconds
    assert iam.count("in progress") == 5
    assert (result.state.jobs[0].polls, result.state.wait_seconds) == (5, 13)
    clock.sleep(13)  # the Wait state
    again = poll_batch(result.state, as_iam(iam), as_s3(s3), clock.budget(None))
    assert iam.count("in progress") == 6  # at 38.3 s; next at 57.4 s
    assert (again.state.jobs[0].polls, again.state.wait_seconds) == (6, 20)


def test_a_full_job_cap_stops_starting_until_one_of_our_jobs_finishes() -> None:
    clock = FakeClock()
    iam, s3 = FakeIam(clock, latency=3, cap=4), FakeS3()  # IAM's cap is lower than the batch's share
    result = start_batch(_state(12, initial_wait=3), as_iam(iam), as_s3(s3), clock.budget(4.0, jobs=10))
    assert result.finished == {JobStatus.COMPLETED: 12}
    assert iam.in_progress_peak <= 4
    # One refusal at most each time the cap fills; never two in a row without a read between
    kinds = [kind for kind, _ in iam.calls if kind != "in progress"]
    assert not any(a == b == "refused" for a, b in itertools.pairwise(kinds))
