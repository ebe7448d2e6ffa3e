"""Fault case 1 (issue 17): a generate or fetch invocation killed mid-batch, after writing some parts.

Lambda kills an invocation at its timeout (`Sandbox.Timedout`) or when its runtime crashes
(`Runtime.ExitError`, `Runtime.OutOfMemory`); the deployed definition retries the batch stages on those
errors with the same input, and the retry resumes from the killed attempt's checkpoint. Here the kill
is an exception named `Sandbox.Timedout`, raised from the collector's own S3 client at the k-th put of
a chosen key (right after it, or right before it), so the invocation dies where it stands with some
parts written; the harness reports it to the interpreter as the function error Lambda would.

The organization is the demo one, its reports done at once and read in pages of 100 services (IAM's
default page size; the emulator's `short_page_items` holds our MaxItems of 1,000 down to it), and parts
are flushed every 1,000 rows instead of 10,000, so that a fetch writes several: the kill point is what
matters. With reports done at once every IAM call is deterministic, so the emulator's call counters
measure exactly what each attempt read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from math import ceil
from typing import Any

import pyarrow as pa
import pytest

from harness.histories import event_type
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.iam_extension import GENERATE, GET
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.services import services
from lambdas.collector.store import parts
from tests.e2e.conftest import FAST, Collector, move_back_one_day
from tests.helpers import organization_targets

PAGE = 100  # services per page
FLUSH = 1_000  # rows per part (FLUSH_ROWS is 10,000)
Calls = dict[str, int]  # the emulator's report calls so far, per operation

# Lambda's own name for an invocation it killed at its timeout: the harness reports a handler's
# exception by its class name, which is the `errorType` Step Functions matches.
Timedout: type[Exception] = type("Sandbox.Timedout", (Exception,), {"__doc__": "Lambda's timeout"})


@dataclass
class Kill:
    """Kills the first attempt of a `stage` at its `nth` put of a rows part (`at="rows"`) or of its
    checkpoint (`at="checkpoint"`), right after the put or right `before` it; notes the emulator's
    report calls at each checkpoint the stage saved before, and at the kill."""

    store: AccessReportStore
    stage: str
    at: str
    nth: int
    before: bool = False
    puts: int = 0
    checkpoints: list[Calls] = field(default_factory=list)
    killed_at: Calls = field(default_factory=dict)

    def install(self) -> Kill:
        events = services().s3.meta.events  # the functions' own client (they run in this process)
        events.register("before-parameter-build.s3.PutObject", self._before)
        events.register("after-call.s3.PutObject", self._after)
        return self

    def calls(self) -> Calls:
        return dict(self.store.throttler.counters.calls)

    def _kind(self, key: str) -> str | None:
        if f"/batch=00000/{self.stage}-" not in key or self.killed_at:
            return None
        return "checkpoint" if "/checkpoints/" in key else "rows" if "/parts/access_details/" in key else None

    def _before(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["kill_key"] = params["Key"]
        kind = context["kill_kind"] = self._kind(params["Key"])
        if kind == self.at:
            self.puts += 1
            if self.before and self.puts == self.nth:
                self._die(params["Key"])

    def _after(self, context: dict[str, Any], **_: Any) -> None:
        kind = context.get("kill_kind")
        if kind == "checkpoint" and not self.killed_at:
            self.checkpoints.append(self.calls())
        if kind == self.at and not self.before and self.puts == self.nth and not self.killed_at:
            self._die(context["kill_key"])

    def _die(self, what: str) -> None:
        self.killed_at = self.calls()
        raise Timedout(f"Task timed out (killed at the put of {what})")


@dataclass
class StageEnds:
    """The emulator's report calls after each stage invocation that returned."""

    ends: list[tuple[str, Calls]] = field(default_factory=list)

    def after(self, stage: str) -> Calls:
        """The calls at the end of the first invocation of `stage` (its retry, if its first attempt was killed)."""
        return next(calls for name, calls in self.ends if name == stage)


@pytest.fixture
def paged(collector: Collector, store: AccessReportStore, monkeypatch: pytest.MonkeyPatch) -> Collector:
    """Reports done at once, read in pages of 100; a part every 1,000 rows. `time_scale` 1 keeps IAM's
    reuse window at its observed 60 s (the retry's back-off is real time)."""
    store.configure(job_seconds=0, time_scale=1.0, short_page_items=PAGE)
    monkeypatch.setattr(parts, "FLUSH_ROWS", FLUSH)
    return collector


def stage_ends(collector: Collector, store: AccessReportStore) -> StageEnds:
    ends = StageEnds()

    def noting(stage: str) -> Callable[[Any], None]:
        return lambda _: ends.ends.append((stage, dict(store.throttler.counters.calls)))

    for name in ("discover", "generate", "poll", "fetch"):
        collector.lambdas.after[name] = [noting(name)]
    return ends


def the_day(collector: Collector, spec: OrganizationSpec, run_id: str, dt: str) -> list[dict[str, Any]]:
    """Checks the day's partition holds every target's report once, every row once, none lost; returns
    the jobs this run collected."""
    tables = collector.tables()
    details = tables["access_details"].filter(pa.compute.equal(tables["access_details"]["dt"], dt))
    jobs = [job for job in tables["report_jobs"].to_pylist() if job["dt"] == dt]
    assert len(jobs) == organization_targets(spec)
    assert {job["job_status"] for job in jobs} == {"COMPLETED"}
    per_job = Counter(details["job_id"].to_pylist())
    assert {job["job_id"]: per_job[job["job_id"]] for job in jobs} == {
        job["job_id"]: job["services_accessible"] for job in jobs
    }  # no row lost: each COMPLETED job has NumberOfServicesAccessible rows
    pairs = Counter(zip(details["target_path"].to_pylist(), details["service_namespace"].to_pylist(), strict=True))
    assert set(pairs.values()) == {1}  # and none twice
    return [job for job in jobs if job["run_id"] == run_id]


def pages(jobs: list[dict[str, Any]]) -> int:
    """The pages of these reports (a report of no service is one empty page)."""
    return sum(max(1, ceil(job["services_accessible"] / PAGE)) for job in jobs)


def retried_once(collector: Collector, stage: str, execution: Any) -> None:
    """The stage's first attempt was killed, and Step Functions retried it (same state, no Catch)."""
    assert [(i.stage, i.error) for i in collector.lambdas.invocations if i.error] == [(stage, "Sandbox.Timedout")]
    kinds = [event_type(event) for event in execution.child_events]
    failed = kinds.index("TaskFailed")
    assert execution.child_events[failed]["taskFailedEventDetails"]["error"] == "Sandbox.Timedout"
    assert kinds[failed + 1] == "TaskScheduled"  # the retry, in the same state


def test_a_fetch_killed_after_its_first_part_is_retried_and_reads_only_what_it_had_not_written(
    paged: Collector, store: AccessReportStore, demo_org: OrganizationSpec
) -> None:
    # The previous day, collected without a fault.
    first = paged.run()
    assert first.status == "SUCCEEDED", first.cause
    previous = move_back_one_day(paged, first.run["dt"])
    before = {name: table.to_pylist() for name, table in paged.tables().items()}
    start = dict(store.throttler.counters.calls)

    # fetch dies right after putting its second rows part: before that part's records and checkpoint.
    kill = Kill(store, "fetch", at="rows", nth=2).install()
    ends = stage_ends(paged, store)
    execution = paged.run()

    assert execution.status == "SUCCEEDED", execution.cause
    retried_once(paged, "fetch", execution)
    jobs = the_day(paged, demo_org, execution.run["run_id"], execution.run["dt"])
    # GetOrganizationsAccessReport calls: generate read each report's first page; the killed fetch read
    # some pages, of which its one checkpoint holds the first part's; the retry read every other page.
    generated, (checkpoint,), retry = ends.after("generate"), kill.checkpoints, ends.after("fetch")
    first_pages = generated[GET] - start[GET]
    killed = kill.killed_at[GET] - generated[GET]
    held = checkpoint[GET] - generated[GET]
    retried = retry[GET] - kill.killed_at[GET]
    fetch_pages = pages(jobs) - first_pages
    assert first_pages == len(jobs) == execution.run["targets"]
    assert 0 < held < killed < fetch_pages
    assert retried == fetch_pages - held  # nothing the checkpoint holds is read again
    assert retry[GET] - start[GET] == pages(jobs) + (killed - held)  # only the unsaved part's pages twice
    assert retry[GENERATE] == generated[GENERATE] == start[GENERATE] + len(jobs)  # no job started again
    # The previous day's snapshot is as it was.
    tables = paged.tables().items()
    assert {name: [row for row in table.to_pylist() if row["dt"] == previous] for name, table in tables} == before


@pytest.mark.parametrize(
    ("before", "reused"),
    [(False, 0), (True, 1)],
    ids=["after-its-job-id-was-saved", "before-its-job-id-was-saved"],
)
def test_a_generate_killed_after_starting_jobs_is_retried_and_starts_no_job_twice(
    paged: Collector, store: AccessReportStore, demo_org: OrganizationSpec, before: bool, reused: int
) -> None:
    # One job at a time (as IAM was observed to admit): generate starts every job. It dies at its third
    # checkpoint: it has started three jobs and read two reports' first pages, into no part yet. Right
    # before that checkpoint, the third job's id is in none: the retry asks IAM again, which answers the
    # same caller with the same job within 60 s (observed live).
    kill = Kill(store, "generate", at="checkpoint", nth=3, before=before).install()
    ends = stage_ends(paged, store)
    execution = paged.run({**FAST, "iam_max_jobs_in_progress": 1})

    assert execution.status == "SUCCEEDED", execution.cause
    retried_once(paged, "generate", execution)
    jobs = the_day(paged, demo_org, execution.run["run_id"], execution.run["dt"])
    targets = organization_targets(demo_org)
    discovered, retry = ends.after("discover"), ends.after("generate")
    killed = {operation: kill.killed_at[operation] - discovered.get(operation, 0) for operation in (GENERATE, GET)}
    retried = {operation: retry[operation] - kill.killed_at[operation] for operation in (GENERATE, GET)}
    assert discovered == {}  # one job at a time: discover starts none (nothing to measure)
    assert killed == {GENERATE: 3, GET: 2}
    assert retried[GENERATE] == targets - 3 + reused  # the jobs it had not saved (one IAM gave again)
    assert len(store.jobs) == len(jobs) == targets  # every job started once
    assert store.reused == reused
    # The first pages the killed attempt read were in no part yet: read again, and nothing else twice.
    assert retried[GET] == targets
    assert ends.after("fetch")[GET] == pages(jobs) + killed[GET]
