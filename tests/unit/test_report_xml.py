"""The emulator's own XML for GetOrganizationsAccessReport reads back, through botocore, as the store's answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser

from iam_report_emulator.activity import ActivityStore
from iam_report_emulator.catalog import load_catalog
from iam_report_emulator.report_xml import get_report_response
from iam_report_emulator.reports_content import build_details

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


def never_used_page() -> dict[str, Any]:
    details = build_details(
        services=frozenset({"iam", "s3", "network-security-manager"}),
        accounts=["111122223333"],
        activity=ActivityStore(),
        since=CREATED,
        until=DONE,
        path_of=str,
        name_of=load_catalog().name_of,
    )
    return {
        "JobStatus": "COMPLETED",
        "JobCreationDate": CREATED,
        "JobCompletionDate": DONE,
        "NumberOfServicesAccessible": 3,
        "NumberOfServicesNotAccessed": 3,
        "AccessDetails": [d.as_response() for d in details],
        "IsTruncated": False,
    }


def test_never_used_rows_are_written_without_empty_elements() -> None:
    xml = get_report_response(never_used_page())
    members = xml.split("<AccessDetails>")[1].split("</AccessDetails>")[0]
    assert members == (
        "<member><ServiceName>AWS Identity and Access Management</ServiceName><ServiceNamespace>iam</ServiceNamespace>"
        "<Region>us-east-1</Region><TotalAuthenticatedEntities>0</TotalAuthenticatedEntities></member>"
        "<member><ServiceName>AWS Network Security Manager</ServiceName>"
        "<ServiceNamespace>network-security-manager</ServiceNamespace>"
        "<TotalAuthenticatedEntities>0</TotalAuthenticatedEntities></member>"
        "<member><ServiceName>Amazon S3</ServiceName><ServiceNamespace>s3</ServiceNamespace>"
        "<TotalAuthenticatedEntities>0</TotalAuthenticatedEntities></member>"
    )


def test_never_used_rows_parse_back_with_only_their_fields() -> None:
    page = never_used_page()
    parsed = parse(get_report_response(page))
    assert parsed == page
    assert [set(d) for d in parsed["AccessDetails"]] == [
        {"ServiceName", "ServiceNamespace", "Region", "TotalAuthenticatedEntities"},  # iam, as observed
        {"ServiceName", "ServiceNamespace", "TotalAuthenticatedEntities"},
        {"ServiceName", "ServiceNamespace", "TotalAuthenticatedEntities"},
    ]
