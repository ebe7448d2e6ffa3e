"""Learning IAM's limits: the job cap (start at one, probe upward, back to the last admitted level on
a refusal) and the call rate (halve on a throttle, grow back slowly), shared by every lane."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lambdas.collector.collect.jobs import StageResult, poll_batch, start_batch
from lambdas.collector.collect.limits import (
    LANE_SECONDS,
    LEASE_SECONDS,
    PREDICTION,
    PROBE_WAIT_MIN,
    RATE_RECOVERY_SECONDS,
    Ceiling,
    LimitState,
    MemoryLimitStore,
    SharedLimits,
    admitted,
    grant,
    recover,
    refused,
    release,
    throttled,
)
from lambdas.collector.collect.pacing import Budget, Pacer
from lambdas.collector.models import BatchState, Job, JobStatus
from lambdas.collector.settings import Pace
from tests.fakes import FakeClock, FakeIam, FakeS3, as_iam, as_s3, run_context, targets
from tests.helpers import budget

CEILING = Ceiling(jobs=50, calls_per_second=20.0)


# The learning, as pure functions of the state


def test_a_start_is_granted_while_fewer_of_our_jobs_run_than_iam_has_admitted() -> None:
    state = LimitState(admitted=2, next_probe=1e9)  # no probe due
    state, first = grant(state, "a", 0.0, CEILING)
    state, second = grant(state, "b", 0.0, CEILING)
    state, third = grant(state, "c", 0.0, CEILING)
    assert (first, second, third) == (first and first, second and second, None)
    assert first is not None
    assert second is not None
    assert not first.probe
    assert set(state.leases) == {"a", "b"}
    # A job that finishes frees its slot
    state, again = grant(release(state, "a"), "c", 1.0, CEILING)
    assert again is not None
    assert set(state.leases) == {"b", "c"}


def test_one_start_beyond_the_admitted_level_is_a_probe_and_only_one_is_out_at_a_time() -> None:
    state, _ = grant(LimitState(admitted=1), "a", 0.0, CEILING)
    state, probe = grant(state, "b", 0.0, CEILING)
    state, other = grant(state, "c", 0.0, CEILING)
    assert probe is not None
    assert probe.probe
    assert other is None  # a probe is out: no second one
    assert state.probe == "b"


def test_an_admitted_probe_raises_the_level_and_the_next_start_may_probe_again() -> None:
    state, _ = grant(LimitState(admitted=1), "a", 0.0, CEILING)
    state, _ = grant(state, "b", 0.0, CEILING)
    state = admitted(state, "b", 1.0)
    assert (state.admitted, state.probe, state.next_probe) == (2, None, 1.0)
    state, probe = grant(state, "c", 1.0, CEILING)
    assert probe is not None
    assert probe.probe


def test_a_refused_probe_keeps_the_last_admitted_level_and_waits_twice_as_long_for_the_next() -> None:
    state, _ = grant(LimitState(admitted=1), "a", 0.0, CEILING)
    state, _ = grant(state, "b", 0.0, CEILING)
    state = refused(state, "b", 5.0)
    assert (state.admitted, state.probe, set(state.leases)) == (1, None, {"a"})
    assert (state.next_probe, state.probe_wait) == (5.0 + PROBE_WAIT_MIN, 2 * PROBE_WAIT_MIN)
    state, denied = grant(release(state, "a"), "c", 6.0, CEILING)  # one slot: granted, no probe yet
    assert denied is not None
    assert not denied.probe
    _, none = grant(state, "d", 6.0, CEILING)
    assert none is None


def test_a_refusal_of_a_start_that_was_no_probe_lowers_the_level_below_the_jobs_running() -> None:
    state = LimitState(admitted=5, leases=dict.fromkeys("abcd", LEASE_SECONDS), next_probe=1e9)
    state, granted = grant(state, "e", 0.0, CEILING)
    assert granted is not None
    assert not granted.probe
    state = refused(state, "e", 0.0)  # IAM now runs four of ours at most (or another caller took one)
    assert state.admitted == 4
    assert refused(LimitState(admitted=3), "x", 0.0).admitted == 1  # never below one


def test_the_ceiling_bounds_the_level_and_stops_the_probes() -> None:
    ceiling = Ceiling(jobs=2)
    state, _ = grant(LimitState(admitted=5), "a", 0.0, ceiling)
    state, _ = grant(state, "b", 0.0, ceiling)
    _, third = grant(state, "c", 0.0, ceiling)
    assert third is None


def test_a_lease_of_a_lane_that_died_lapses() -> None:
    state, _ = grant(LimitState(admitted=1, next_probe=1e9), "a", 0.0, CEILING)
    assert grant(state, "b", 10.0, CEILING)[1] is None
    state, later = grant(state, "b", LEASE_SECONDS + 1, CEILING)
    assert later is not None
    assert set(state.leases) == {"b"}


def test_a_throttle_halves_the_rate_once_a_second_and_quiet_time_grows_it_back_to_the_ceiling() -> None:
    state = throttled(LimitState(), 100.0, CEILING)
    assert state.rate == 10.0
    assert throttled(state, 100.5, CEILING).rate == 10.0  # another lane saw the same burst
    state = throttled(state, 101.0, CEILING)
    assert state.rate == 5.0
    assert recover(state, 101.0 + RATE_RECOVERY_SECONDS - 1, CEILING).rate == 5.0
    for n in range(1, 20):
        state = recover(state, 101.0 + n * RATE_RECOVERY_SECONDS, CEILING)
    assert state.rate is None
    assert state.rate_within(CEILING) == 20.0


def test_the_state_survives_its_item_form() -> None:
    state = LimitState(admitted=3, leases={"a": 1.5}, probe="a", next_probe=2.0, rate=4.5, rate_at=9.0, version=7)
    assert LimitState.from_item(state.as_item()) == state
    assert LimitState.from_item(LimitState().as_item()) == LimitState()


# The learning in a batch's stages against IAM with a given cap (the fake's clock moves with waits)


def _run(count: int, iam: FakeIam, clock: FakeClock, shared: SharedLimits, latency: int = 3) -> list[StageResult]:
    """A batch of `count` account reports, its stages chained as the state machine chains them."""
    run = run_context(count, Pace(poll_initial_wait_seconds=latency, poll_max_attempts=100).polling)
    state = BatchState(run=run, batch=0, jobs=[Job(target=t) for t in targets(count)])
    s3 = FakeS3()
    results = [start_batch(state, as_iam(iam), as_s3(s3), _budget(clock, shared))]
    while results[-1].state.jobs:
        clock.sleep(max(1, results[-1].state.wait_seconds))  # the Wait state
        results.append(poll_batch(results[-1].state, as_iam(iam), as_s3(s3), _budget(clock, shared)))
        assert len(results) < 500
    return results


def _budget(clock: FakeClock, shared: SharedLimits, time_left_ms: Callable[[], int] = lambda: 900_000) -> Budget:
    """A stage's budget on the fake clock, paced at the shared limits' rate."""
    pacer = Pacer(None, clock.monotonic, clock.sleep)
    return budget(pacer=pacer, clock=clock.now, sleep=clock.sleep, shared=shared, time_left_ms=time_left_ms)


def _shared(
    clock: FakeClock, store: MemoryLimitStore | None = None, ceiling: Ceiling = CEILING, lane: str = "test"
) -> SharedLimits:
    return SharedLimits(
        store or MemoryLimitStore(), ceiling, lane=lane, run_id="run-1", clock=clock.now, throttle_count=lambda: 0
    )


def _finished(results: list[StageResult]) -> dict[JobStatus, int]:
    out: dict[JobStatus, int] = {}
    for result in results:
        for status, n in result.finished.items():
            out[status] = out.get(status, 0) + n
    return out


@pytest.mark.parametrize("cap", [1, 5, 50])
def test_the_cap_is_learned_from_one_with_at_most_one_refusal_per_probe(cap: int) -> None:
    clock = FakeClock()
    iam, store = FakeIam(clock, latency=3, cap=cap), MemoryLimitStore()
    shared = _shared(clock, store)
    results = _run(200, iam, clock, shared)
    assert _finished(results) == {JobStatus.COMPLETED: 200}
    assert iam.in_progress_peak <= cap
    assert store.state.admitted == cap  # learned, no configuration
    # At most one refusal per probe (a probe admitted while one of our jobs had ended unread can
    # overshoot the level by one, which the next refusal corrects), and IAM calls per target near two
    assert iam.count("refused") <= shared.probes
    assert len(iam.calls) / 200 <= 2.2


def test_a_cap_that_falls_mid_run_is_followed_down_and_one_that_rises_is_found_by_the_next_probes() -> None:
    clock = FakeClock()
    iam, store = FakeIam(clock, latency=3, cap=5), MemoryLimitStore()
    _run(60, iam, clock, _shared(clock, store))
    assert store.state.admitted == 5
    iam.cap = 2  # IAM admits fewer now (another caller's jobs, or a lower cap)
    refusals = iam.count("refused")
    _run(60, iam, clock, _shared(clock, store))
    assert store.state.admitted == 2
    assert iam.count("refused") - refusals <= 5  # a few refusals to come down (each lowers the level)
    iam.cap = 8
    clock.sleep(2 * PROBE_WAIT_MIN * 64)  # the next probe is due (its wait has doubled a few times)
    _run(100, iam, clock, _shared(clock, store))
    assert store.state.admitted == 8


def test_a_call_rate_lower_than_configured_is_learned_and_its_throttles_stay_few() -> None:
    clock = FakeClock()
    iam, store = FakeIam(clock, latency=3, cap=50, rate=2.0), MemoryLimitStore()  # configured 20/s, IAM gives 2/s
    shared = _shared(clock, store)
    results = _run(100, iam, clock, shared)
    assert _finished(results) == {JobStatus.COMPLETED: 100}
    assert store.state.rate is not None
    assert store.state.rate <= 4.0
    answered = len(iam.calls) - iam.count("throttled")
    assert iam.count("throttled") <= 0.15 * answered


def test_lanes_that_share_the_limits_never_run_more_jobs_together_than_iam_admitted() -> None:
    # Two lanes (batches) take turns on one clock, sharing one store; IAM admits three jobs at once
    clock = FakeClock()
    iam, store = FakeIam(clock, latency=3, cap=3), MemoryLimitStore()
    lanes = [_shared(clock, store), _shared(clock, store)]
    lanes[1].run_id = "run-1-lane-2"  # other leases (the lease ids name the run and target)
    short: Callable[[], int] = lambda: 5_000  # noqa: E731  # invocations of five seconds: the lanes interleave
    run = run_context(40, Pace(poll_initial_wait_seconds=3, poll_max_attempts=100).polling, batches=2)
    chosen = targets(40)
    states = [BatchState(run=run, batch=n, jobs=[Job(target=t) for t in chosen[n::2]]) for n in range(2)]
    done = 0
    for _ in range(200):
        for n in range(2):
            if states[n].jobs:
                stage = _budget(clock, lanes[n], short)
                result = poll_batch(states[n], as_iam(iam), as_s3(FakeS3()), stage)
                done += result.finished.get(JobStatus.COMPLETED, 0)
                states[n] = result.state
        if not any(state.jobs for state in states):
            break
        clock.sleep(1)
    assert done == 40
    assert iam.in_progress_peak <= 3
    assert store.state.admitted == 3


def test_report_latencies_are_learned_in_the_shared_state_for_every_lane_and_the_next_runs() -> None:
    state = LimitState(leases={"a": LEASE_SECONDS})
    for n in range(40):
        state = release(state, "a", {"account": 5.0 + n / 10, PREDICTION: 1.0 + n / 100})
    assert state.leases == {}
    assert len(state.latency["account"]) == len(state.latency[PREDICTION]) == 32  # the latest few
    assert state.slowest == {"account": 8.9}  # of report times only, not of the predictions' ratios
    assert LimitState.from_item(state.as_item()) == state


def test_the_lanes_calling_iam_share_the_rate_and_a_lane_that_stops_leaves_its_part_to_the_others() -> None:
    clock = FakeClock()
    store = MemoryLimitStore(LimitState(admitted=50, next_probe=1e12))
    one, two = _shared(clock, store, lane="batch-0"), _shared(clock, store, lane="batch-1")
    # One lane calling: the whole rate
    one.grant(targets(1)[0])
    assert one.calls_per_second == CEILING.calls_per_second
    # A second lane starts calling: each has half, as each learns at its next change of the state
    two.grant(targets(2)[1])
    assert two.calls_per_second == CEILING.calls_per_second / 2
    one.release(targets(1)[0])
    assert one.calls_per_second == CEILING.calls_per_second / 2
    # The second lane waits (or its batch is done): the first has the whole rate again
    two.idle()
    one.grant(targets(3)[2])
    assert one.calls_per_second == CEILING.calls_per_second
    # A lane that stops changing the state without saying so counts for LANE_SECONDS only
    two.grant(targets(4)[3])
    clock.sleep(LANE_SECONDS + 1)
    one.release(targets(3)[2])
    assert one.calls_per_second == CEILING.calls_per_second
    assert set(store.state.lanes) == {"batch-0"}
