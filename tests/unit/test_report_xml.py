"""The emulator's own XML for GetOrganizationsAccessReport reads back, through botocore, as the store's answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser

from iam_report_emulator.report_xml import get_report_response

CREATED = datetime(2026, 11, 24, 3, 0, 1, 250_000, tzinfo=UTC)
DONE = datetime(2026, 11, 24, 3, 0, 4, tzinfo=UTC)


def parse(xml: str) -> dict[str, Any]:
    operation = botocore.session.get_session().get_service_model("iam").operation_model("GetOrganizationsAccessReport")
    assert operation.output_shape is not None
    parsed: dict[str, Any] = create_parser("query").parse(
        {"body": xml.encode(), "headers": {}, "status_code": 200}, operation.output_shape
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


@pytest.mark.parametrize(
    "report",
    [
        {"JobStatus": "IN_PROGRESS", "JobCreationDate": CREATED},
        {
            "JobStatus": "FAILED",
            "JobCreationDate": CREATED,
            "JobCompletionDate": DONE,
            "ErrorDetails": {"Message": "The report for 'o-x/r-y' could not be <generated> & kept", "Code": "E1"},
        },
        {
            "JobStatus": "COMPLETED",
            "JobCreationDate": CREATED,
            "JobCompletionDate": DONE,
            "NumberOfServicesAccessible": 3,
            "NumberOfServicesNotAccessed": 1,
            "AccessDetails": [
                {
                    "ServiceName": "AWS Identity & Access <Management>",
                    "ServiceNamespace": "iam",
                    "Region": "us-east-1",
                    "EntityPath": "o-abcdefghij/r-ab12/111122223333",
                    "LastAuthenticatedTime": DONE,
                    "TotalAuthenticatedEntities": 2,
                },
                {"ServiceName": "Amazon S3", "ServiceNamespace": "s3", "TotalAuthenticatedEntities": 0},
            ],
            "IsTruncated": True,
            "Marker": "b64+/=marker",
        },
        {
            "JobStatus": "COMPLETED",
            "JobCreationDate": CREATED,
            "JobCompletionDate": DONE,
            "NumberOfServicesAccessible": 0,
            "NumberOfServicesNotAccessed": 0,
            "AccessDetails": [],
            "IsTruncated": False,
        },
    ],
    ids=["in-progress", "failed", "page-with-marker", "empty"],
)
def test_the_document_parses_back_to_the_answer(report: dict[str, Any]) -> None:
    assert parse(get_report_response(report)) == report
