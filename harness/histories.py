"""The execution histories of a Distributed Map's child executions, which moto keeps but does not serve.

moto's interpreter records each map run's child executions into an event manager of their own that
no API reaches (`ListExecutions` with a map run ARN fails). While `MapRunHistories.installed()` is
active, every such event manager is kept, so the child executions' events can be counted like the
parent's history: state transitions are what Step Functions bills.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import distributed_iteration_component
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

TASK_SCHEDULED = frozenset({"LambdaFunctionScheduled", "TaskScheduled"})


def event_type(event: Mapping[str, Any]) -> str:
    kind = event["type"]
    return str(getattr(kind, "value", kind))


def transitions(events: Iterable[Mapping[str, Any]]) -> int:
    """Billed state transitions: every state entered, plus every retry of a task (a retry is a
    transition too; it shows as a task scheduled again without a new state entered)."""
    entered = tasks_entered = scheduled = 0
    for event in events:
        kind = event_type(event)
        if kind.endswith("StateEntered"):
            entered += 1
            tasks_entered += kind == "TaskStateEntered"
        elif kind in TASK_SCHEDULED:
            scheduled += 1
    return entered + max(0, scheduled - tasks_entered)


class MapRunHistories:
    """Collects the child executions' events of every map run started while installed."""

    def __init__(self) -> None:
        self._managers: list[EventManager] = []

    @contextmanager
    def installed(self) -> Iterator[MapRunHistories]:
        module = vars(distributed_iteration_component)  # moto does not re-export the name it uses
        original = module["EventManager"]
        managers = self._managers

        class Recording(original):  # type: ignore[misc, valid-type]  # moto's class, typed loosely
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                managers.append(self)

        module["EventManager"] = Recording
        try:
            yield self
        finally:
            module["EventManager"] = original

    def events(self) -> list[dict[str, Any]]:
        return [dict(event) for manager in self._managers for event in manager.get_event_history()]
