"""`timed`: each invocation of the in-process functions timed on the virtual clock, as Lambda bills it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from harness.runner import InProcessLambdas, LocalFunction
from harness.virtual_time.clock import VirtualClock


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
