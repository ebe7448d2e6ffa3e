"""The names infra and the functions share: stacks, roles, functions, metrics and the S3 layout.

Side-effect free (no AWS client, no Powertools object, no environment read) so that the CDK app can
import it at synth time and the functions at run time, and the two can never disagree.

    {prefix}runs/{run_id}/manifest.json                         discover: the batches of targets
    {prefix}runs/{run_id}/plan.json                             discover: every target, planned or deferred
    {prefix}runs/{run_id}/parts/{dataset}/batch=NNNNN/{stage}-RRRR.parquet
                                                               generate/poll/fetch: scratch parts
    {prefix}runs/{run_id}/checkpoints/batch=NNNNN/{stage}-RRRR.json
                                                               generate/poll/fetch: where a retry resumes
    {prefix}runs/{run_id}/organization.json                     discover: the tree, join dates, attached SCPs
    {prefix}{dataset}/dt=YYYY-MM-DD/part-BBBBB-of-NNNNN.parquet finalize: the day's snapshot, a target
                                                               always in the same file (its bucket)
    {prefix}scp_recommendations/dt=YYYY-MM-DD/recommendations.parquet
    {prefix}recommendations/dt=YYYY-MM-DD/{target_id}.json     recommend: the day's guardrail proposals
    {prefix}reports/dt=YYYY-MM-DD/index.html, reports/latest/index.html   report: the day's page

A part's key is fixed by the batch and the stage's round, which the state input carries: a retried
invocation rewrites the same key, so retries never duplicate rows. Scratch under `runs/` is left
for the bucket's lifecycle rule; queries only ever read the dataset prefixes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

COLLECTOR_STACK = "OrgAccessReportCollector"
REPORTER_STACK = "OrgAccessReportReporterRole"
REPORTER_ROLE = "OrgAccessReportReader"  # the reporter role's name in the cross-account mode
SERVICE = "org-access-report"  # Powertools service name, and the functions' name prefix
NAMESPACE = "OrgAccessReport"  # CloudWatch metrics namespace

_SNAPSHOT_FILE = re.compile(r"/part-\d{5}-of-(\d{5})\.parquet$")

# A key prefix in the data bucket: '' or S3-safe segments, each ending in '/'.
DATA_PREFIX = r"^([A-Za-z0-9_.=-]+/)*$"


class Function(StrEnum):
    """The collector's functions; each is also its handler module `lambdas.handlers.<name>`."""

    DISCOVER = "discover"
    GENERATE = "generate"
    POLL = "poll"
    FETCH = "fetch"
    FINALIZE = "finalize"
    RECOMMEND = "recommend"
    REPORT = "report"
    ALERT = "alert"


# The functions that call IAM and Organizations through the reporter role.
REPORTING = (Function.DISCOVER, Function.GENERATE, Function.POLL, Function.FETCH)


class Metric(StrEnum):
    TARGETS_DISCOVERED = "TargetsDiscovered"
    REPORTS_GENERATED = "ReportsGenerated"
    REPORT_JOBS_FAILED = "ReportJobsFailed"
    PAGES_FETCHED = "PagesFetched"
    ROWS_WRITTEN = "RowsWritten"
    UNUSED_SERVICES = "UnusedServices"
    NEWLY_UNUSED_SERVICES = "NewlyUnusedServices"
    IAM_THROTTLES = "IamThrottles"
    RUNS_SKIPPED = "RunsSkipped"
    GUARDRAILS_PROPOSED = "GuardrailsProposed"  # targets with a proposed SCP
    GUARDRAIL_SERVICES_NEW = "GuardrailServicesNew"  # a run that started while another was in progress, ended at once


class DatasetName(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def partition_key(self) -> str: ...


@dataclass(frozen=True)
class Layout:
    """Where everything lives under the data bucket's `prefix` (see the module docstring)."""

    prefix: str = ""

    @property
    def scratch(self) -> str:
        return f"{self.prefix}runs/"

    def run(self, run_id: str) -> str:
        return f"{self.scratch}{run_id}/"

    def manifest(self, run_id: str) -> str:
        return f"{self.run(run_id)}manifest.json"

    def plan(self, run_id: str) -> str:
        """Every target of the run with the plan's decision: what finalize carries forward."""
        return f"{self.run(run_id)}plan.json"

    def organization(self, run_id: str) -> str:
        """The organization as discover walked it (`lambdas.collector.organization`)."""
        return f"{self.run(run_id)}organization.json"

    @property
    def recommendations(self) -> str:
        return f"{self.prefix}recommendations/"

    def recommendation(self, dt: str, target_id: str) -> str:
        return f"{self.recommendations}dt={dt}/{target_id}.json"

    @property
    def reports(self) -> str:
        return f"{self.prefix}reports/"

    def report_page(self, dt: str) -> str:
        return f"{self.reports}dt={dt}/index.html"

    @property
    def latest_report_page(self) -> str:
        return f"{self.reports}latest/index.html"

    def parts(self, run_id: str, dataset: DatasetName) -> str:
        return f"{self.run(run_id)}parts/{dataset.name}/"

    def part(self, run_id: str, dataset: DatasetName, batch: int, stage: str, round_: int) -> str:
        return f"{self.parts(run_id, dataset)}batch={batch:05d}/{stage}-{round_:04d}.parquet"

    def checkpoint(self, run_id: str, batch: int, stage: str, round_: int) -> str:
        """What a stage invocation has written so far (`lambdas.collector.store.parts.Checkpoint`): a retry
        of the invocation resumes from it."""
        return f"{self.run(run_id)}checkpoints/batch={batch:05d}/{stage}-{round_:04d}.json"

    def dataset(self, dataset: DatasetName) -> str:
        return f"{self.prefix}{dataset.name}/"

    def partition(self, dataset: DatasetName, dt: str) -> str:
        return f"{self.dataset(dataset)}{dataset.partition_key}={dt}/"

    def snapshot_file(self, dataset: DatasetName, dt: str, bucket: int, buckets: int) -> str:
        """A file of a day's snapshot: the same key in every run of the day, so a rerun overwrites it."""
        return f"{self.partition(dataset, dt)}part-{bucket:05d}-of-{buckets:05d}.parquet"


def snapshot_buckets(key: str) -> int | None:
    """How many files the day of a snapshot file is spread over (None: not a `snapshot_file` key)."""
    found = _SNAPSHOT_FILE.search(key)
    return int(found.group(1)) if found else None
