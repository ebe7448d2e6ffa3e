"""How many report jobs IAM admits at once, and how fast it may be called: learned at run time and
shared by every lane of the run (and by the next runs).

AWS publishes neither figure; one job at a time was observed live, per account or per path nobody
knows (`../shared/FIELD-NOTES.md`). So the collector does not ask the operator: the configured
`iam_max_jobs_in_progress` and `iam_calls_per_second` are upper bounds (`Ceiling`), and the state
below, one item per organization in a small DynamoDB table, holds what IAM has shown:

- **Jobs.** Every job of ours in progress holds a lease (`leases`: lease id → when it lapses, so a
  lane that died frees its slot). A start is granted while fewer leases are live than `admitted`,
  the most jobs IAM has run for us at once (1 to begin with). Now and then (`next_probe`) one start
  beyond that is a *probe*: only one at a time, so a probe costs at most one refusal. IAM admitting
  it raises `admitted` to the leases then live, and the next start may probe again (one more job
  per start while IAM keeps admitting); a refused probe leaves `admitted` where it was (the last
  admitted level) and doubles the time to the next probe (`probe_wait`, up to `PROBE_WAIT_MAX`).
  A refusal of a start that was *not* a probe means IAM admits fewer than it did (another caller's
  job, or a lower cap): `admitted` drops below the jobs then running, to one at least.
- **Calls.** `rate` starts at the ceiling. A throttle that outlasted the client's adaptive retries
  halves it, at most once a second across lanes (absorbed ones are only counted: a few random
  throttles must not drag the rate down); every `RATE_RECOVERY_SECONDS`
  without one it grows back by a tenth of the ceiling (additive increase, multiplicative decrease).
  The lanes calling IAM now share it: each change a lane makes marks it calling for `LANE_SECONDS`,
  a lane about to wait or done says so (`idle`), and each paces its calls to `rate / lanes calling`,
  so a lane that finishes early or waits for its reports leaves its part to the others.
- **Report latencies** per kind, and how far each target's own last report time was off
  (`PREDICTION`), learned as jobs finish, so every lane and the next runs read jobs when due.

The learning is pure functions of `LimitState` (unit-tested); `LimitStore` keeps the state:
`DynamoLimitStore` with optimistic concurrency (a conditional write on `version`, re-read and
re-applied on conflict), `MemoryLimitStore` for a single process.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from botocore.exceptions import ClientError

from lambdas.collector.errors import LimitsError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from lambdas.collector.models import RunContext, Target

# A lease lapses after this: a lane that died frees its slot (IAM's reports take seconds).
LEASE_SECONDS = 900.0
PROBE_WAIT_MIN = 60.0
PROBE_WAIT_MAX = 6 * 3600.0
RATE_DECREASE_EVERY = 1.0  # one halving per second at most, however many lanes saw the throttle
RATE_RECOVERY_SECONDS = 30.0
RATE_RECOVERY_SHARE = 0.1  # of the ceiling, per recovery step
RATE_MIN = 0.05  # calls per second: one every 20 s
_CONFLICT_RETRIES = 20
LATENCY_SAMPLES = 32  # report latencies kept per kind
# The samples of actual ÷ expected report time, for targets whose own last report time was known.
PREDICTION = "predicted"
LANE_SECONDS = 30.0  # a lane counts as calling IAM this long after it last changed the state
KEY_ATTRIBUTE = "pk"  # the limits table's partition key: the organization id


@dataclass(frozen=True)
class Ceiling:
    """The configured upper bounds: `iam_max_jobs_in_progress`, `iam_calls_per_second` (infinite: unpaced)."""

    jobs: int
    calls_per_second: float = math.inf

    @classmethod
    def of(cls, run: RunContext) -> Ceiling:
        """The bounds the run was configured with."""
        return cls(run.max_jobs_in_progress, run.max_calls_per_second or math.inf)


@dataclass(frozen=True)
class LimitState:
    admitted: int = 1
    leases: dict[str, float] = field(default_factory=dict)  # lease id -> epoch seconds it lapses
    probe: str | None = None  # the lease of the start probing one job beyond `admitted`
    next_probe: float = 0.0
    probe_wait: float = PROBE_WAIT_MIN
    rate: float | None = None  # None: not throttled yet, the ceiling
    rate_at: float = 0.0  # when `rate` last changed
    # Report latencies IAM reported, per kind of report (`collect.latency`): the latest few, and the slowest.
    latency: dict[str, list[float]] = field(default_factory=dict)
    slowest: dict[str, float] = field(default_factory=dict)
    # The lanes calling IAM now (lane id -> epoch seconds it stops counting): they share the rate.
    lanes: dict[str, float] = field(default_factory=dict)
    version: int = 0

    def live(self, now: float) -> dict[str, float]:
        return {lease: until for lease, until in self.leases.items() if until > now}

    def calling(self, now: float, lane: str | None = None) -> int:
        """Lanes calling IAM now, `lane` among them (one at least)."""
        live = {other for other, until in self.lanes.items() if until > now} | ({lane} if lane else set())
        return max(1, len(live))

    def jobs_within(self, ceiling: Ceiling) -> int:
        """The jobs at once IAM has admitted, within the configured bound."""
        return min(self.admitted, ceiling.jobs)

    def rate_within(self, ceiling: Ceiling) -> float:
        return min(ceiling.calls_per_second, self.rate if self.rate is not None else ceiling.calls_per_second)

    def as_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "admitted": {"N": str(self.admitted)},
            "leases": {"M": {k: {"N": repr(v)} for k, v in self.leases.items()}},
            "next_probe": {"N": repr(self.next_probe)},
            "probe_wait": {"N": repr(self.probe_wait)},
            "rate_at": {"N": repr(self.rate_at)},
            "latency": {"S": json.dumps({"latest": self.latency, "slowest": self.slowest}, sort_keys=True)},
            "lanes": {"M": {k: {"N": repr(v)} for k, v in self.lanes.items()}},
            "version": {"N": str(self.version)},
        }
        if self.probe is not None:
            item["probe"] = {"S": self.probe}
        if self.rate is not None:
            item["rate"] = {"N": repr(self.rate)}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LimitState:
        latency = json.loads(item["latency"]["S"]) if "latency" in item else {}
        return cls(
            latency={k: [float(x) for x in v] for k, v in latency.get("latest", {}).items()},
            slowest={k: float(v) for k, v in latency.get("slowest", {}).items()},
            admitted=int(item["admitted"]["N"]),
            leases={k: float(v["N"]) for k, v in item.get("leases", {}).get("M", {}).items()},
            lanes={k: float(v["N"]) for k, v in item.get("lanes", {}).get("M", {}).items()},
            probe=item["probe"]["S"] if "probe" in item else None,
            next_probe=float(item["next_probe"]["N"]),
            probe_wait=float(item["probe_wait"]["N"]),
            rate=float(item["rate"]["N"]) if "rate" in item else None,
            rate_at=float(item["rate_at"]["N"]),
            version=int(item["version"]["N"]),
        )


@dataclass(frozen=True)
class Grant:
    lease: str
    probe: bool


# The learning: each takes the state and "now" (epoch seconds) and returns the state it leads to.


def grant(state: LimitState, lease: str, now: float, ceiling: Ceiling) -> tuple[LimitState, Grant | None]:
    """May a job start? Yes while fewer than `admitted` of our jobs run; one start beyond that is a
    probe when one is due and none is out. Lapsed leases are dropped; the rate recovers here too."""
    state = recover(state, now, ceiling)
    live = state.live(now)
    probe = state.probe if state.probe in live else None
    if lease in live:
        return state, Grant(lease, lease == probe)
    limit = state.jobs_within(ceiling)
    if len(live) < limit:
        leases = {**live, lease: now + LEASE_SECONDS}
        return replace(state, leases=leases, probe=probe), Grant(lease, probe=False)
    if probe is None and len(live) == limit and limit < ceiling.jobs and now >= state.next_probe:
        leases = {**live, lease: now + LEASE_SECONDS}
        return replace(state, leases=leases, probe=lease), Grant(lease, probe=True)
    return replace(state, leases=live, probe=probe), None


def admitted(state: LimitState, lease: str, now: float) -> LimitState:
    """IAM started the job: it runs as many of ours at once as hold leases now."""
    live = state.live(now)
    if lease not in live:
        return state
    level = max(state.admitted, len(live))
    if state.probe == lease:
        return replace(state, admitted=level, probe=None, probe_wait=PROBE_WAIT_MIN, next_probe=now)
    return replace(state, admitted=level)


def refused(state: LimitState, lease: str, now: float) -> LimitState:
    """IAM refused the start (`ReportGenerationLimitExceeded`): a probe leaves `admitted` as it was and
    waits twice as long for the next; any other start lowers `admitted` below the jobs running."""
    live = {k: v for k, v in state.live(now).items() if k != lease}
    if state.probe == lease:
        wait = min(PROBE_WAIT_MAX, state.probe_wait * 2)
        return replace(state, leases=live, probe=None, probe_wait=wait, next_probe=now + state.probe_wait)
    lowered = max(1, min(state.admitted - 1, len(live)))
    return replace(state, leases=live, admitted=lowered, next_probe=max(state.next_probe, now + state.probe_wait))


def release(state: LimitState, lease: str, learned: Mapping[str, float] | None = None) -> LimitState:
    """The job finished (or will not be read again): its slot is free. `learned`: what its report
    taught (`collect.latency`: its kind of report → its creation-to-completion time, and how far
    that was from the target's own last one), kept for every lane and the next runs."""
    for key, value in (learned or {}).items():
        samples = {**state.latency, key: [*state.latency.get(key, []), round(value, 3)][-LATENCY_SAMPLES:]}
        slowest = (
            state.slowest if key == PREDICTION else {**state.slowest, key: max(value, state.slowest.get(key, 0.0))}
        )
        state = replace(state, latency=samples, slowest=slowest)
    if lease not in state.leases:
        return state
    leases = {k: v for k, v in state.leases.items() if k != lease}
    return replace(state, leases=leases, probe=None if state.probe == lease else state.probe)


def throttled(state: LimitState, now: float, ceiling: Ceiling) -> LimitState:
    """IAM throttled a call: halve the rate (once a second at most, whichever lane saw it)."""
    if math.isinf(ceiling.calls_per_second) or (state.rate is not None and now - state.rate_at < RATE_DECREASE_EVERY):
        return state
    return replace(state, rate=max(RATE_MIN, state.rate_within(ceiling) / 2), rate_at=now)


def recover(state: LimitState, now: float, ceiling: Ceiling) -> LimitState:
    """No throttle for a while: the rate grows back by a share of the ceiling."""
    if state.rate is None or now - state.rate_at < RATE_RECOVERY_SECONDS:
        return state
    rate = state.rate + RATE_RECOVERY_SHARE * ceiling.calls_per_second
    return replace(state, rate=None if rate >= ceiling.calls_per_second else rate, rate_at=now)


def lane_calling(state: LimitState, lane: str, now: float) -> LimitState:
    """The lane is calling IAM: it counts among those sharing the rate for `LANE_SECONDS`."""
    lanes = {k: v for k, v in state.lanes.items() if v > now}
    return replace(state, lanes={**lanes, lane: now + LANE_SECONDS})


def lane_idle(state: LimitState, lane: str, now: float) -> LimitState:
    """The lane stops calling (it waits, or its batch is done): the others share its part of the rate."""
    if lane not in state.lanes:
        return state
    return replace(state, lanes={k: v for k, v in state.lanes.items() if k != lane and v > now})


R = TypeVar("R")
Change = Callable[[LimitState], tuple[LimitState, R]]


class LimitStore(Protocol):
    def read(self) -> LimitState: ...

    def change(self, change: Change[R]) -> R:
        """Apply `change` to the current state atomically; its result."""
        ...


class MemoryLimitStore:
    """The state in this process only (one lane, or a test)."""

    def __init__(self, state: LimitState | None = None) -> None:
        self.state = state or LimitState()
        self._lock = threading.Lock()

    def read(self) -> LimitState:
        return self.state

    def change(self, change: Change[R]) -> R:
        with self._lock:
            self.state, result = change(self.state)
            return result


class DynamoLimitStore:
    """The state as one item of the limits table (key `pk`: the organization id), written only if
    no other lane wrote it since it was read (`version`); on a conflict the change is re-applied."""

    def __init__(self, dynamodb: DynamoDBClient, table: str, key: str) -> None:
        self._dynamodb, self._table, self._key = dynamodb, table, {KEY_ATTRIBUTE: {"S": key}}

    def read(self) -> LimitState:
        try:
            item = self._dynamodb.get_item(TableName=self._table, Key=self._key, ConsistentRead=True).get("Item")
        except ClientError as error:
            raise LimitsError(f"cannot read the learned limits from {self._table}: {error}") from error
        return LimitState.from_item(dict(item)) if item else LimitState()

    def change(self, change: Change[R]) -> R:
        for _ in range(_CONFLICT_RETRIES):
            state = self.read()
            new, result = change(state)
            if new == state:
                return result
            item = {**self._key, **replace(new, version=state.version + 1).as_item()}
            try:
                self._dynamodb.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression=f"attribute_not_exists({KEY_ATTRIBUTE}) OR version = :seen",
                    ExpressionAttributeValues={":seen": {"N": str(state.version)}},
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    continue  # another lane wrote first: read again, apply again
                raise LimitsError(f"cannot write the learned limits to {self._table}: {error}") from error
            return result
        raise LimitsError(f"the learned limits in {self._table} kept changing under {_CONFLICT_RETRIES} attempts")


def lease_of(run_id: str, target: Target) -> str:
    """A job's lease id: short, and the same for the same target of the same run."""
    return hashlib.sha256(f"{run_id}|{target.path}|{target.policy_id or ''}".encode()).hexdigest()[:20]


class SharedLimits:
    """One invocation's view of the learned limits: grants starts, learns from IAM's answers, and
    paces this lane to its share of the learned rate among the lanes calling IAM now."""

    def __init__(
        self,
        store: LimitStore,
        ceiling: Ceiling,
        *,
        lane: str,
        run_id: str,
        clock: Callable[[], datetime],
        throttle_count: Callable[[], int],
    ) -> None:
        """`lane`: this lane's id among the run's; `throttle_count`: throttles so far, including those the
        client's retries absorbed."""
        self.store, self.ceiling, self.lane, self.run_id = store, ceiling, lane, run_id
        self._clock, self._throttle_count = clock, throttle_count
        self._seen = throttle_count()
        state = store.read()
        self._rate, self._calling = state.rate_within(ceiling), state.calling(self._now(), lane)
        self.latency, self.slowest = state.latency, state.slowest  # as learned when the invocation began
        self.probes = 0
        self.throttles = 0
        self.absorbed = 0

    def _now(self) -> float:
        return self._clock().timestamp()

    @property
    def calls_per_second(self) -> float:
        """This lane's share of the learned call rate."""
        return self._rate / self._calling

    def _change(self, change: Callable[[LimitState, float], tuple[LimitState, R]]) -> R:
        """Apply a change of the learning, this lane counted as calling; keep the rate and the lanes
        it leaves this lane."""
        now = self._now()

        def apply(state: LimitState) -> tuple[LimitState, tuple[R, float, int]]:
            new, result = change(lane_calling(state, self.lane, now), now)
            return new, (result, new.rate_within(self.ceiling), new.calling(now))

        result, self._rate, self._calling = self.store.change(apply)
        return result

    def grant(self, target: Target) -> Grant | None:
        lease = lease_of(self.run_id, target)
        granted = self._change(lambda state, now: grant(state, lease, now, self.ceiling))
        self.probes += bool(granted and granted.probe)
        return granted

    def admitted(self, target: Target) -> None:
        lease = lease_of(self.run_id, target)
        self._change(lambda state, now: (admitted(state, lease, now), None))

    def refused(self, target: Target) -> None:
        lease = lease_of(self.run_id, target)
        self._change(lambda state, now: (refused(state, lease, now), None))

    def release(self, target: Target, learned: Mapping[str, float] | None = None) -> None:
        lease = lease_of(self.run_id, target)
        self._change(lambda state, now: (release(state, lease, learned), None))

    def idle(self) -> None:
        """This lane stops calling IAM for now (it sleeps, or hands its batch back to the state machine)."""
        now = self._now()
        self.store.change(lambda state: (lane_idle(state, self.lane, now), None))

    def after_call(self, throttled_now: bool) -> None:
        """After each IAM call: a throttle that outlasted the client's adaptive retries slows every
        lane. Throttles the retries absorbed are counted only: the client's own adaptive limiter has
        answered them, and a few at random (IAM's, not caused by our pace) must not drag the shared
        rate down."""
        count = self._throttle_count()
        self.absorbed += count - self._seen
        self._seen = count
        if throttled_now:
            self.throttled()

    def throttled(self) -> None:
        self.throttles += 1
        self._change(lambda state, now: (throttled(state, now, self.ceiling), None))
