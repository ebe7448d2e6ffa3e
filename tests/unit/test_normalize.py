"""The documented example response normalizes to exactly the expected access_details rows."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from lambdas.collector.store.normalize import ColumnBuffer, JobContext, account_of
from lambdas.collector.store.schema import ACCESS_DETAILS, DATASETS, REPORT_JOBS
from tests.documented_example import DOCUMENTED_JOB_ID, DOCUMENTED_OU_PATH, DOCUMENTED_RESPONSE

OU_PATH = DOCUMENTED_OU_PATH
# The documented response, with the iam time as botocore might parse it in another zone: stored as UTC.
DOCUMENTED = copy.deepcopy(DOCUMENTED_RESPONSE)
DOCUMENTED["AccessDetails"][1]["LastAuthenticatedTime"] = DOCUMENTED["AccessDetails"][1][
    "LastAuthenticatedTime"
].astimezone(timezone(timedelta(hours=2)))
RUN_START = datetime(2019, 6, 18, 19, 47, 0, tzinfo=UTC)
CONTEXT = JobContext(
    run_id="run-20190618",
    collected_at=RUN_START,
    organization_id="o-a1b2c3d4e5",
    target_path=OU_PATH,
    target_type="ORGANIZATIONAL_UNIT",
    target_id="ou-1a2b3c-k9l8m7n6o5example",
    target_name="Example",
    policy_id=None,
    job_id=DOCUMENTED_JOB_ID,
    job_creation_date=DOCUMENTED["JobCreationDate"],
    job_completion_date=DOCUMENTED["JobCompletionDate"],
    services_accessible=3,
    services_not_accessed=1,
)


def test_the_documented_example_normalizes_to_the_expected_rows() -> None:
    buffer = ColumnBuffer()
    assert buffer.add_access_details(CONTEXT, DOCUMENTED["AccessDetails"]) == 3
    table = buffer.to_table()
    assert table.schema == ACCESS_DETAILS.arrow_schema
    shared = {
        "run_id": "run-20190618",
        "collected_at": RUN_START,
        "organization_id": "o-a1b2c3d4e5",
        "target_path": OU_PATH,
        "target_type": "ORGANIZATIONAL_UNIT",
        "target_id": "ou-1a2b3c-k9l8m7n6o5example",
        "target_name": "Example",
        "policy_id": None,
        "job_id": "examplea-1234-b567-cde8-90fg123abcd4",
        "job_creation_date": datetime(2019, 6, 18, 19, 47, 31, tzinfo=UTC),
        "job_completion_date": datetime(2019, 6, 18, 19, 47, 35, tzinfo=UTC),
        "services_accessible": 3,
        "services_not_accessed": 1,
        "carried_forward": False,  # a run's own rows: finalize sets it on rows carried from earlier reports
        "data_age_days": 0,
    }
    assert table.to_pylist() == [
        {
            **shared,
            "service_name": "Amazon DynamoDB",
            "service_namespace": "dynamodb",
            "last_authenticated_time": datetime(2019, 5, 25, 16, 29, 52, tzinfo=UTC),
            "last_authenticated_region": "us-east-1",
            "last_authenticated_entity_path": f"{OU_PATH}/111122223333",
            "last_authenticated_account_id": "111122223333",
            "total_authenticated_entities": 2,
            "accessed": True,
        },
        {
            **shared,
            "service_name": "AWS Identity and Access Management",
            "service_namespace": "iam",
            "last_authenticated_time": datetime(2019, 6, 15, 13, 12, 6, tzinfo=UTC),
            "last_authenticated_region": "us-east-1",
            "last_authenticated_entity_path": f"{OU_PATH}/123456789012",
            "last_authenticated_account_id": "123456789012",
            "total_authenticated_entities": 4,
            "accessed": True,
        },
        {
            **shared,
            "service_name": "Amazon Simple Storage Service",
            "service_namespace": "s3",
            "last_authenticated_time": None,
            "last_authenticated_region": None,
            "last_authenticated_entity_path": None,
            "last_authenticated_account_id": None,
            "total_authenticated_entities": 0,
            "accessed": False,
        },
    ]


def test_naive_times_are_refused() -> None:
    detail = {**DOCUMENTED["AccessDetails"][0], "LastAuthenticatedTime": datetime(2019, 5, 25)}  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        ColumnBuffer().add_access_details(CONTEXT, [detail])


def test_account_of_reads_only_account_leaves() -> None:
    assert account_of(f"{OU_PATH}/111122223333/") == "111122223333"
    assert account_of(OU_PATH) is None
    assert account_of(None) is None


def test_the_schema_has_the_columns_the_issue_names() -> None:
    assert ACCESS_DETAILS.column_names[-10:] == [
        "services_accessible", "services_not_accessed", "service_name", "service_namespace",
        "last_authenticated_time", "last_authenticated_region", "last_authenticated_entity_path",
        "last_authenticated_account_id", "total_authenticated_entities", "accessed",
    ]  # fmt: skip
    assert REPORT_JOBS.column_names[-8:] == [
        "job_status", "services_accessible", "services_not_accessed", "rows_written", "pages", "iam_calls",
        "error_code", "error_message",
    ]  # fmt: skip
    assert ACCESS_DETAILS.column_names[:11] == REPORT_JOBS.column_names[:11]  # the job's context, shared
    for dataset in DATASETS:
        assert len(set(dataset.column_names)) == len(dataset.column_names)
        assert dataset.arrow_schema.field("collected_at").type == pa.timestamp("us", tz="UTC")
        assert all(c.glue_type in {"string", "timestamp", "int", "boolean"} for c in dataset.columns)
