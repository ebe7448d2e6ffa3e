"""The boto3 documentation's example response of get_organizations_access_report, as botocore
parses it (../shared/reference). One copy, for every test that replays or normalizes it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

DOCUMENTED_OU_PATH = "o-a1b2c3d4e5/r-f6g7h8i9j0example/ou-1a2b3c-k9l8m7n6o5example"
DOCUMENTED_JOB_ID = "examplea-1234-b567-cde8-90fg123abcd4"
DOCUMENTED_RESPONSE: dict[str, Any] = {
    "AccessDetails": [
        {
            "EntityPath": f"{DOCUMENTED_OU_PATH}/111122223333",
            "LastAuthenticatedTime": datetime(2019, 5, 25, 16, 29, 52, tzinfo=UTC),
            "Region": "us-east-1",
            "ServiceName": "Amazon DynamoDB",
            "ServiceNamespace": "dynamodb",
            "TotalAuthenticatedEntities": 2,
        },
        {
            "EntityPath": f"{DOCUMENTED_OU_PATH}/123456789012",
            "LastAuthenticatedTime": datetime(2019, 6, 15, 13, 12, 6, tzinfo=UTC),
            "Region": "us-east-1",
            "ServiceName": "AWS Identity and Access Management",
            "ServiceNamespace": "iam",
            "TotalAuthenticatedEntities": 4,
        },
        {"ServiceName": "Amazon Simple Storage Service", "ServiceNamespace": "s3", "TotalAuthenticatedEntities": 0},
    ],
    "IsTruncated": False,
    "JobCompletionDate": datetime(2019, 6, 18, 19, 47, 35, tzinfo=UTC),
    "JobCreationDate": datetime(2019, 6, 18, 19, 47, 31, tzinfo=UTC),
    "JobStatus": "COMPLETED",
    "NumberOfServicesAccessible": 3,
    "NumberOfServicesNotAccessed": 1,
}
