"""`simulated`: moto's Step Functions interpreter, the collector's functions, botocore's retry delays
and the emulated IAM report calls, patched to run on a `VirtualClock`."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
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
from harness.virtual_time.clock import VirtualClock
from iam_report_emulator.iam_extension import REPORT_OPERATIONS
from lambdas.collector.services import services

# The latency of one IAM report call (request to answer), not published: a typical AWS API call.
IAM_CALL_SECONDS = 0.1


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
