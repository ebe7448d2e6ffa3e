"""Virtual time for a whole deployed run: a day of IAM's observed latencies in seconds of real time.

One time for everything: the emulator's clock (`AccessReportStore.clock`, frozen) is moved on only by
`VirtualClock`, a discrete-event clock. A thread that sleeps on it registers its wake time and blocks;
time jumps to the earliest wake time once every participant is asleep or blocked on another one, and
never otherwise. Computing takes no virtual time; the real time it takes is reported apart.

Participants hold *tokens*, counted by the clock (`busy`). `simulated()` gives them out where moto's
Step Functions interpreter runs work on a thread of its own, and hands them over where one thread waits
for another, so that no gap between two pieces of work ever shows the clock an idle system:

- a program (the execution's, or a Distributed Map child's) holds one while it runs its states;
  whoever runs it (`Program.eval`) lends it first and takes it back after, and holds none itself while
  waiting;
- a Task or Map state's body runs on a thread of its own (`ExecutionState._evaluate_with_timeout`): the
  state's thread lends it a token the same way;
- a Map's workers each hold one (lent at launch), and the Map holds none while it awaits them; the
  close of its last job hands one to the Map before it wakes it;
- a sleep (a Wait state, a Retry's back-off, the functions' own waits through `services().sleep`,
  botocore's retry delays, the latency of an IAM report call) gives up the sleeper's tokens until its
  wake time; the clock hands them back when it wakes it.

The clock also waits for a real quiet period (`quiet_seconds`) before a jump, a safety net for work
the tokens do not see; `ClockStats.interrupted_quiet` counts the quiet periods that activity broke (each
would have been a jump too early without it). Executions start and stop, history events are stamped,
and Lambda contexts count their 15 minutes (`harness.runner.LambdaContext`) on this clock, and an
execution past its state machine's TimeoutSeconds times out on it.

Limits: time spent computing is not virtual time, so a run that computes a lot between IAM calls is
shown faster than it is (its computing time is reported apart); moto's own waits that nothing here
replaces (a Task's TimeoutSeconds, an Activity, a callback) stay in real time and hold virtual time
still while they wait; the quiet period is real time, so on a loaded machine it may be too short to
cover work the tokens miss (`interrupted_quiet` then shows how often).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any
from unittest import mock

import botocore.endpoint
from botocore.exceptions import CapacityNotAvailableError
from botocore.retries import bucket
from moto.iam.responses import IamResponse
from moto.stepfunctions.parser.api import ExecutionTimedOutEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.inline_iteration_component import (
    InlineIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.job import JobPool
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.parser.utils import TMP_THREADS

import iam_report_emulator
from harness.runner import InProcessLambdas, LocalFunction
from iam_report_emulator.clock import EmulatorClock
from iam_report_emulator.iam_extension import REPORT_OPERATIONS
from lambdas.collector.services import services

# A real quiet period before each jump: a safety net only, for work the tokens would miss. Measured
# (`make bench` units at 100 accounts: three observed days per cap scope, the generous run, the stressed
# run at 1,000): with 50 ms, 0 of 6,419 quiet periods were broken by activity, and with none at all
# every run's virtual wall time came out the same to the 0.1 s (the stressed run, whose random throttles
# follow the threads' order, within 0.1 %). Before the Map's handover existed, this measure caught the
# one gap (the Map resuming after its last worker) that let a stressed run jump to its 12-hour timeout.
# 1 ms costs about 1 ms of real time per jump.
QUIET_SECONDS = 0.001
# The latency of one IAM report call (request to answer), not published: a typical AWS API call.
IAM_CALL_SECONDS = 0.1


@dataclass(eq=False)
class _Sleeper:
    wake: datetime
    seq: int
    held: int  # the sleeping thread's tokens, given back when it wakes
    callback: Callable[[], None] | None = None  # a timer: run by the clock at its wake time
    cancelled: bool = False
    event: threading.Event = field(default_factory=threading.Event)

    def __lt__(self, other: _Sleeper) -> bool:
        return (self.wake, self.seq) < (other.wake, other.seq)


@dataclass
class ClockStats:
    jumps: int = 0
    advanced_seconds: float = 0.0  # virtual seconds the jumps added up to
    sleeps: int = 0
    interrupted_quiet: int = 0  # quiet periods broken by activity: jumps the tokens alone would have made early
    quiet_real_seconds: float = 0.0  # real time spent waiting out quiet periods


class VirtualClock:
    """A discrete-event clock over an `EmulatorClock`, which it freezes at `start` (or its current time)."""

    def __init__(
        self, clock: EmulatorClock, start: datetime | None = None, *, quiet_seconds: float = QUIET_SECONDS
    ) -> None:
        self._clock = clock
        clock.freeze(start or clock.now())
        self.quiet_seconds = quiet_seconds
        self.stats = ClockStats()
        self._cond = threading.Condition()
        self._busy = 0
        self._local = threading.local()
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()
        self._changes = 0
        self._closed = False
        self._coordinator = threading.Thread(target=self._coordinate, name="virtual-clock", daemon=True)
        self._coordinator.start()

    def now(self) -> datetime:
        return self._clock.now()

    @property
    def busy(self) -> int:
        with self._cond:
            return self._busy

    # -- tokens ------------------------------------------------------------------------------

    def _held(self) -> int:
        return int(getattr(self._local, "held", 0))

    def _add(self, busy: int, held: int) -> None:
        with self._cond:
            self._busy += busy
            self._local.held = self._held() + held
            if self._busy < 0:
                raise RuntimeError("virtual clock: more tokens given back than were held")
            self._changed()

    def _changed(self) -> None:
        self._changes += 1
        if self._busy == 0:
            self._cond.notify()

    @contextlib.contextmanager
    def participant(self) -> Iterator[None]:
        """This thread holds virtual time while inside (except while it sleeps)."""
        self._add(1, 1)
        try:
            yield
        finally:
            self._add(-1, -1)

    def lend(self) -> None:
        """A token for another thread's work (which `adopted` it), counted from before it starts."""
        self._add(1, 0)

    def reclaim(self) -> None:
        """A lent token given back, after the work it was lent for has ended."""
        self._add(-1, 0)

    @contextlib.contextmanager
    def lent(self) -> Iterator[None]:
        """A token lent for the work done inside (on another thread), reclaimed after it."""
        self.lend()
        try:
            yield
        finally:
            self.reclaim()

    @contextlib.contextmanager
    def adopted(self) -> Iterator[None]:
        """This thread works on a token `lent` to it (its sleeps give it up)."""
        self._add(0, 1)
        try:
            yield
        finally:
            self._add(0, -1)

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        """This thread waits for other participants: it holds no time while inside."""
        held = self._held()
        self._add(-held, -held)
        try:
            yield
        finally:
            self._add(held, held)

    # -- sleeping and timers -----------------------------------------------------------------

    def _push(self, seconds: float, held: int, callback: Callable[[], None] | None = None) -> _Sleeper:
        with self._cond:
            # Rounded up to the clock's microsecond: a sleep always moves time on (a bucket that waits
            # for a fraction of a token would otherwise wake at the same instant for ever).
            wake = self.now() + timedelta(microseconds=math.ceil(seconds * 1e6))
            sleeper = _Sleeper(wake, next(self._seq), held, callback)
            heapq.heappush(self._sleepers, sleeper)
            self._busy -= held
            self._local.held = self._held() - held
            self.stats.sleeps += callback is None
            self._changed()
            return sleeper

    def sleep(self, seconds: float) -> None:
        """Block until virtual time has moved on by `seconds`, holding none of this thread's tokens."""
        if seconds <= 0:
            return
        held = self._held()
        sleeper = self._push(seconds, held)
        sleeper.event.wait()
        self._local.held = self._held() + held  # the clock counted them busy again when it woke us

    def timer(self, seconds: float, callback: Callable[[], None]) -> _Sleeper:
        """Run `callback` (on the clock's thread) once virtual time has moved on by `seconds`."""
        return self._push(seconds, 0, callback)

    def cancel(self, timer: _Sleeper) -> None:
        with self._cond:
            timer.cancelled = True
            self._changed()

    def advance_to(self, when: datetime) -> None:
        """Move time on to `when` between runs (nothing may be asleep)."""
        with self._cond:
            if any(not s.cancelled for s in self._sleepers):
                raise RuntimeError("virtual clock: cannot jump while participants sleep")
            if when > self.now():
                self._clock.advance((when - self.now()).total_seconds())

    def close(self) -> None:
        """Stop the clock; every sleeper still waiting wakes at once."""
        with self._cond:
            self._closed = True
            for sleeper in self._sleepers:
                sleeper.event.set()
            self._sleepers.clear()
            self._cond.notify()
        self._coordinator.join()

    # -- the coordinator ---------------------------------------------------------------------

    def _idle(self) -> bool:
        while self._sleepers and self._sleepers[0].cancelled:
            heapq.heappop(self._sleepers)
        return self._busy == 0 and bool(self._sleepers)

    def _coordinate(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._idle():
                    self._cond.wait()
                    continue
                if self.quiet_seconds > 0:
                    seen, started = self._changes, time.monotonic()
                    self._cond.wait(self.quiet_seconds)
                    self.stats.quiet_real_seconds += time.monotonic() - started
                    if self._changes != seen:
                        self.stats.interrupted_quiet += 1
                        continue
                    if not self._idle():
                        continue
                timers = self._jump()
                if timers:
                    self._cond.release()
                    try:
                        for callback in timers:
                            callback()
                    finally:
                        self._cond.acquire()

    def _jump(self) -> list[Callable[[], None]]:
        """Move to the earliest wake time; wake every sleeper due then (counting its tokens busy again)."""
        wake = self._sleepers[0].wake
        now = self.now()
        if wake > now:
            seconds = (wake - now).total_seconds()
            self._clock.advance(seconds)
            self.stats.jumps += 1
            self.stats.advanced_seconds += seconds
        timers = []
        while self._sleepers and self._sleepers[0].wake <= wake:
            sleeper = heapq.heappop(self._sleepers)
            if sleeper.cancelled:
                continue
            self._busy += sleeper.held
            if sleeper.callback is not None:
                timers.append(sleeper.callback)
            sleeper.event.set()
        self._changes += 1
        return timers


class _Sleeping(ModuleType):
    """A module's `time` as that module sees it, with `sleep` on the virtual clock."""

    def __init__(self, sleep: Callable[[float], None]) -> None:
        super().__init__("time")
        self.sleep = sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextlib.contextmanager
def simulated(clock: VirtualClock, *, iam_call_seconds: float = IAM_CALL_SECONDS) -> Iterator[VirtualClock]:
    """While inside, moto's Step Functions interpreter, the collector's functions (`services()`),
    botocore's retry delays and the emulated IAM report calls all run on `clock`."""
    aws = services()
    patches = [
        *_executions(clock),
        *_states(clock),
        *_botocore(clock),
        mock.patch.object(aws, "clock", clock.now),
        mock.patch.object(aws, "sleep", clock.sleep),
        *_iam_latency(clock, iam_call_seconds),
    ]
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield clock


def _executions(clock: VirtualClock) -> list[Any]:
    """Programs (an execution's, a map's child's) hold a token while they run their states; an execution
    starts, stops, stamps its history and times out on the clock."""
    timed_out: dict[int, datetime] = {}
    original_eval, original_body = Program.eval, Program._eval_body
    original_init: Any = Execution.__init__
    original_reflect: Any = BaseExecutionWorkerCommunication._reflect_execution_status

    def program_eval(program: Any, env: Any) -> None:
        with clock.lent():
            timer = None
            timeout = getattr(program.timeout_seconds, "timeout_seconds", None)
            if isinstance(timeout, int):  # the state machine's TimeoutSeconds

                def expire() -> None:
                    timed_out[id(env)] = clock.now()
                    # As AWS records it (moto neither writes this event nor answers a timed-out
                    # execution's stopDate: the history says when it stopped)
                    details: Any = {
                        "executionTimedOutEventDetails": ExecutionTimedOutEventDetails(
                            error="States.Timeout", cause=f"the execution ran longer than {timeout} s"
                        )
                    }
                    env.event_manager.add_event(
                        context=env.event_history_context,
                        event_type=HistoryEventType.ExecutionTimedOut,
                        event_details=details,
                    )
                    env.set_timed_out()

                timer = clock.timer(timeout, expire)
            with clock.suspended():
                original_eval(program, env)
            if timer is not None:
                clock.cancel(timer)

    def program_body(program: Any, env: Any) -> None:
        with clock.adopted():
            original_body(program, env)

    def execution_init(execution: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["start_date"] = clock.now()
        original_init(execution, *args, **kwargs)

    def reflect(communication: Any) -> None:
        original_reflect(communication)
        env = communication.execution.exec_worker.env
        communication.execution.stop_date = timed_out.pop(id(env), None) or clock.now()

    return [
        mock.patch.object(Program, "eval", program_eval),
        mock.patch.object(Program, "_eval_body", program_body),
        mock.patch.object(Execution, "__init__", execution_init),
        mock.patch.object(BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect),
        mock.patch.object(EventManager, "_get_current_timestamp", staticmethod(clock.now)),
    ]


def _states(clock: VirtualClock) -> list[Any]:
    """A Task or Map state's body, on its own thread, holds the state's token; a Map's workers hold one
    each while the Map awaits them; Wait states and Retry back-offs sleep on the clock."""
    original_evaluate = execute_state.ExecutionState._evaluate_with_timeout
    original_await, original_close = JobPool.await_jobs, JobPool.close_job

    def evaluate_with_timeout(state: Any, env: Any) -> None:
        with clock.lent(), clock.suspended():
            original_evaluate(state, env)

    class AdoptingThread(threading.Thread):  # the thread `_evaluate_with_timeout` starts
        def run(self) -> None:
            with clock.adopted():
                super().run()

    def launch_worker(component: Any, env: Any, eval_input: Any, job_pool: Any) -> Any:
        worker = component._create_worker(env=env, eval_input=eval_input, job_pool=job_pool)
        clock.lend()  # the worker's, reclaimed when it ends

        def work() -> None:
            try:
                with clock.adopted():
                    worker.eval()
            finally:
                clock.reclaim()

        thread = threading.Thread(target=work, daemon=True)
        TMP_THREADS.append(thread)
        thread.start()
        return worker

    handover = threading.Condition()

    def close_job(pool: Any, job: Any) -> None:
        # The close that ends the pool wakes the Map's thread: a token goes to it first, so that the
        # worker's end leaves no idle gap before the Map resumes (it reclaims the token then).
        clock.lend()
        try:
            original_close(pool, job)
        finally:
            with handover:
                handed = pool._is_terminated() and not getattr(pool, "_virtual_token", False)
                if handed:
                    pool._virtual_token = True
                    handover.notify_all()
            if not handed:
                clock.reclaim()

    def await_jobs(pool: Any) -> None:
        with clock.suspended():
            original_await(pool)
        if pool._jobs_number:  # else no job was ever closed, no token handed
            with handover:
                handover.wait_for(lambda: getattr(pool, "_virtual_token", False))
            clock.reclaim()

    def wait_interval(_: Any, env: Any, wait_seconds: int) -> None:
        clock.sleep(wait_seconds)

    return [
        mock.patch.object(execute_state.ExecutionState, "_evaluate_with_timeout", evaluate_with_timeout),
        mock.patch.object(execute_state, "Thread", AdoptingThread),
        mock.patch.object(InlineIterationComponent, "_launch_worker", launch_worker),
        mock.patch.object(JobPool, "await_jobs", await_jobs),
        mock.patch.object(JobPool, "close_job", close_job),
        mock.patch.object(WaitFunction, "_wait_interval", wait_interval),
        mock.patch.object(retrier_decl, "time", _Sleeping(clock.sleep)),
    ]


def _botocore(clock: VirtualClock) -> list[Any]:
    """botocore's retry delays, and its adaptive mode's client-side rate limiter (a token bucket that
    fills and waits on its own clock), on the virtual clock."""

    def acquire(bucket: Any, amount: int = 1, block: bool = True) -> bool:
        while True:
            with bucket._new_fill_rate_condition:
                bucket._refill()
                if amount <= bucket._current_capacity:
                    bucket._current_capacity -= amount
                    return True
                if not block:
                    raise CapacityNotAvailableError()
                wait = bucket._sleep_amount(amount)
            clock.sleep(wait)

    def sleep(_: Any, amount: float) -> None:
        clock.sleep(amount)

    def current_time(_: Any) -> float:
        return clock.now().timestamp()

    return [
        mock.patch.object(botocore.endpoint, "time", _Sleeping(clock.sleep)),
        mock.patch.object(bucket.Clock, "sleep", sleep),
        mock.patch.object(bucket.Clock, "current_time", current_time),
        mock.patch.object(bucket.TokenBucket, "acquire", acquire),
    ]


def _iam_latency(clock: VirtualClock, seconds: float) -> list[Any]:
    """Each IAM report call takes `seconds` of virtual time before the emulator answers it."""
    if seconds <= 0:
        return []
    iam_report_emulator.install()  # the operations this wraps
    patches = []
    for operation in REPORT_OPERATIONS:
        name = "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
        original = getattr(IamResponse, name)

        def answer(response: Any, _original: Any = original) -> Any:
            clock.sleep(seconds)
            return _original(response)

        patches.append(mock.patch.object(IamResponse, name, answer))
    return patches


@dataclass
class LambdaTimes:
    """Per function, its invocations' durations on the virtual clock (their sleeps and IAM's answers)
    and their computing time (CPU time of the invoking thread); Lambda bills the two together. And the
    invocations that ran past their function's timeout (Lambda would have ended them)."""

    seconds: dict[str, float] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)  # CPU time of the invoking threads
    over_timeout: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, function: LocalFunction, seconds: float, compute: float) -> None:
        with self._lock:
            self.seconds[function.name] = self.seconds.get(function.name, 0.0) + seconds
            self.compute[function.name] = self.compute.get(function.name, 0.0) + compute
            if seconds + compute > function.timeout_seconds:
                self.over_timeout.append(function.name)


@contextlib.contextmanager
def timed(lambdas: InProcessLambdas, clock: VirtualClock) -> Iterator[LambdaTimes]:
    """While inside, each invocation of `lambdas` is timed on `clock`."""
    times = LambdaTimes()
    original = lambdas.invoke

    def invoke(function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        function = lambdas.functions[function_name.rsplit(":", 1)[-1]]
        started, cpu = clock.now(), time.thread_time()
        try:
            return original(function_name, body, response_headers)
        finally:
            times.add(function, (clock.now() - started).total_seconds(), time.thread_time() - cpu)

    with mock.patch.object(lambdas, "invoke", invoke):
        yield times
