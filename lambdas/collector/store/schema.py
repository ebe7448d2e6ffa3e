"""The one schema of the collector's datasets: `access_details`, `report_jobs`, `scp_recommendations`,
`unused_summary`.

The Parquet writer, the Glue table definitions and the local SQL engine all read the columns from
here; there is no second list. Each column has a logical type from which the Arrow type (Parquet)
and the Hive/Glue type (Athena) are derived. All are partitioned by `dt` (YYYY-MM-DD),
which lives in the S3 key (`dt=…/`), not in the files.

A column with a `default` is one the day's snapshot sets (finalize) and a run's parts leave at the
default; a file written before the column existed reads as the default too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pyarrow as pa


class Kind(StrEnum):
    STRING = "string"
    TIMESTAMP = "timestamp"  # UTC, microseconds
    INT = "int"
    BOOL = "bool"


_ARROW = {
    Kind.STRING: pa.string(),
    Kind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    Kind.INT: pa.int32(),
    Kind.BOOL: pa.bool_(),
}
REQUIRED: Any = object()  # a column every row must set

_GLUE = {Kind.STRING: "string", Kind.TIMESTAMP: "timestamp", Kind.INT: "int", Kind.BOOL: "boolean"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    comment: str
    nullable: bool = False
    default: Any = REQUIRED  # the value of a row that does not set it

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW[self.kind]

    @property
    def glue_type(self) -> str:
        return _GLUE[self.kind]


@dataclass(frozen=True)
class Dataset:
    name: str
    columns: tuple[Column, ...]
    partition_key: str = "dt"

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.columns])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def defaults(self) -> dict[str, Any]:
        """The columns a row may leave out, with the value it then has."""
        return {c.name: c.default for c in self.columns if c.default is not REQUIRED}


STR, TS, INT, BOOL = Kind.STRING, Kind.TIMESTAMP, Kind.INT, Kind.BOOL

# Who, what and when of the job a row came from; shared by both datasets.
_JOB_COLUMNS = (
    Column("run_id", STR, "collector run (one per scheduled execution)"),
    Column("collected_at", TS, "when the run started (UTC)"),
    Column("organization_id", STR, "o-… of the organization"),
    Column("target_path", STR, "entity path of the report's target (root, OU or account)"),
    Column("target_type", STR, "ROOT | ORGANIZATIONAL_UNIT | ACCOUNT"),
    Column("target_id", STR, "r-…, ou-… or the 12-digit account id"),
    Column("target_name", STR, "account or OU name, for people", nullable=True),
    Column("policy_id", STR, "SCP the report was narrowed to; null = all SCPs", nullable=True),
    Column("job_id", STR, "IAM report job id", nullable=True),
    Column("job_creation_date", TS, "IAM JobCreationDate", nullable=True),
    Column("job_completion_date", TS, "IAM JobCompletionDate", nullable=True),
    # Every day's partition holds every target: collected by the day's run, or carried forward from
    # its latest earlier report (that report's run_id, job and collected_at kept).
    Column("carried_forward", BOOL, "true: carried from an earlier report, not collected this run", default=False),
    Column("data_age_days", INT, "days from the report's collected_at to the partition's dt", default=0),
)

ACCESS_DETAILS = Dataset(
    "access_details",
    (
        *_JOB_COLUMNS,
        Column("services_accessible", INT, "NumberOfServicesAccessible of the report"),
        Column("services_not_accessed", INT, "NumberOfServicesNotAccessed of the report"),
        Column("service_name", STR, "ServiceName"),
        Column("service_namespace", STR, "ServiceNamespace (IAM service prefix)"),
        Column(
            "last_authenticated_time", TS, "LastAuthenticatedTime (UTC); null = not used in 400 days", nullable=True
        ),
        Column("last_authenticated_region", STR, "Region of the last access", nullable=True),
        Column("last_authenticated_entity_path", STR, "EntityPath of the last accessor", nullable=True),
        Column("last_authenticated_account_id", STR, "account of the last accessor", nullable=True),
        Column("total_authenticated_entities", INT, "accounts in scope that used the service"),
        Column("accessed", BOOL, "used within the tracking period"),
    ),
)

REPORT_JOBS = Dataset(
    "report_jobs",
    (
        *_JOB_COLUMNS,
        Column(
            "plan",
            STR,
            "why the run planned the target (ROOT_OR_OU, NEW, OU_CHANGED, DUE, AHEAD) or deferred it (NOT_DUE, "
            "OVER_BUDGET)",
            nullable=True,
            default=None,
        ),
        Column(
            "job_status", STR, "COMPLETED | FAILED | TIMED_OUT | NOT_STARTED | INCOMPLETE | NOT_COLLECTED | DEFERRED"
        ),
        Column("services_accessible", INT, "NumberOfServicesAccessible", nullable=True),
        Column("services_not_accessed", INT, "NumberOfServicesNotAccessed", nullable=True),
        Column("rows_written", INT, "access_details rows written for the job"),
        Column("pages", INT, "GetOrganizationsAccessReport pages read"),
        Column("iam_calls", INT, "IAM report calls made for the job, retries excluded"),
        Column("error_code", STR, "ErrorDetails.Code, or the collector's own check", nullable=True),
        Column("error_message", STR, "ErrorDetails.Message, or what the check found", nullable=True),
    ),
)

# One row per service a guardrail recommendation proposes, withdraws or finds done (see
# `lambdas.collector.guardrails`), or one row with no service for a target with none of those.
SCP_RECOMMENDATIONS = Dataset(
    "scp_recommendations",
    (
        Column("run_id", STR, "collector run that made the recommendation"),
        Column("collected_at", TS, "when the run started (UTC)"),
        Column("organization_id", STR, "o-… of the organization"),
        Column("target_path", STR, "entity path of the root, OU or account"),
        Column("target_type", STR, "ROOT | ORGANIZATIONAL_UNIT | ACCOUNT"),
        Column("target_id", STR, "r-…, ou-… or the 12-digit account id"),
        Column("target_name", STR, "OU or account name", nullable=True),
        Column("status", STR, "PROPOSED | NOTHING_TO_DENY | HELD | NO_EVIDENCE | NO_SLOT"),
        Column("reason", STR, "why held, no evidence or left out; why a service was withdrawn", nullable=True),
        Column("window_days", INT, "days unused before a service is proposed"),
        Column("service_namespace", STR, "IAM service prefix; null: the target's row without a service", nullable=True),
        Column("service_name", STR, "service name", nullable=True),
        Column("change", STR, "NEW | UNCHANGED (proposed) | WITHDRAWN | DONE, since the previous day", nullable=True),
        Column("last_authenticated_time", TS, "last use anywhere in scope; null = not in 400 days", nullable=True),
        Column("days_unused", INT, "days from the last use (or the evidence's start) to the report", nullable=True),
        Column("accounts_in_scope", INT, "member accounts the target's SCPs bind"),
        Column("policy_name", STR, "the proposed SCP that denies the service", nullable=True),
        Column("policy_chars", INT, "that SCP's size as AWS counts it", nullable=True),
        Column("report_collected_at", TS, "when the report the recommendation rests on was collected", nullable=True),
        Column("report_age_days", INT, "that report's age on the day", nullable=True),
    ),
)

# One row per root and OU per day: the report page's trend, and a cheap history to query.
UNUSED_SUMMARY = Dataset(
    "unused_summary",
    (
        Column("run_id", STR, "collector run whose snapshot was summarised"),
        Column("collected_at", TS, "when the run started (UTC)"),
        Column("organization_id", STR, "o-… of the organization"),
        Column("target_path", STR, "entity path of the root or OU"),
        Column("target_type", STR, "ROOT | ORGANIZATIONAL_UNIT"),
        Column("target_id", STR, "r-… or ou-…"),
        Column("target_name", STR, "OU name", nullable=True),
        Column("window_days", INT, "a service unused this many days counts as unused"),
        Column("services_allowed", INT, "services the SCPs allow there"),
        Column("services_used", INT, "of those, used within the window"),
        Column("services_unused", INT, "of those, not used within the window (never used included)"),
        Column("services_never_used", INT, "of those, not used in IAM's 400 days"),
        Column("data_age_days", INT, "age of the report the row summarises"),
    ),
)

DATASETS = (ACCESS_DETAILS, REPORT_JOBS, SCP_RECOMMENDATIONS, UNUSED_SUMMARY)
