"""`python -m harness report`: the root's access report, straight from the emulator, as a person sees it.

With the emulator's server up and an organization seeded, assumes the reporter role (one session for the
whole run, as IAM's report-owner rule requires), generates the root's access report, waits for it, reads
every page and prints the report as a table. No collector is involved: this is what IAM answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from harness.clients import reporter_role_arn, role_session_client
from harness.tables import print_table
from iam_report_emulator.seed import OrganizationSpec
from iam_report_emulator.server import Endpoint

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import GetOrganizationsAccessReportResponseTypeDef


def reporter_iam_client(endpoint: Endpoint, account_id: str, session_name: str) -> Any:
    """An IAM client acting as the reporter role's session `session_name`."""
    return role_session_client("iam", reporter_role_arn(account_id), session_name, endpoint_url=endpoint.url)


def read_report(
    iam: IAMClient, job_id: str, poll_seconds: float = 0.5, timeout: float = 120.0
) -> Iterator[GetOrganizationsAccessReportResponseTypeDef]:
    """Wait for the job, then yield every page (looping on IsTruncated, never on page size)."""
    deadline = time.monotonic() + timeout
    page = iam.get_organizations_access_report(JobId=job_id, MaxItems=1000)
    while page["JobStatus"] == "IN_PROGRESS":
        if time.monotonic() > deadline:
            raise TimeoutError(f"report job {job_id} still IN_PROGRESS after {timeout:.0f}s")
        time.sleep(poll_seconds)
        page = iam.get_organizations_access_report(JobId=job_id, MaxItems=1000)
    if page["JobStatus"] == "FAILED":
        raise RuntimeError(f"report job {job_id} failed: {page.get('ErrorDetails')}")
    yield page
    while page.get("IsTruncated"):
        page = iam.get_organizations_access_report(JobId=job_id, MaxItems=1000, Marker=page["Marker"])
        yield page


def print_root_report(out: TextIO, endpoint: Endpoint, spec: OrganizationSpec) -> int:
    """Generate, wait for and print the root's report of the seeded organization `spec`."""
    started = time.monotonic()
    session = f"report-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    iam = reporter_iam_client(endpoint, spec.management_account_id, session)
    root_path = f"{spec.organization_id}/{spec.root_id}"
    job_id = iam.generate_organizations_access_report(EntityPath=root_path)["JobId"]
    out.write(f"Generated report job {job_id} for {root_path} as role session '{session}'\n")
    pages = list(read_report(iam, job_id))
    details = [d for page in pages for d in page["AccessDetails"]]
    used = [d for d in details if d.get("LastAuthenticatedTime")]
    rows: list[list[object]] = [
        [d["ServiceNamespace"], d["ServiceName"][:40], d["LastAuthenticatedTime"], d["Region"],
         d["TotalAuthenticatedEntities"], d["EntityPath"].rsplit("/", 1)[-1]]
        for d in used
    ]  # fmt: skip
    print_table(rows, ["namespace", "service", "last used (UTC)", "region", "accounts", "last account"], out)
    first = pages[0]
    out.write(
        f"\n{first['NumberOfServicesAccessible']} services allowed by SCPs at the root, "
        f"{len(used)} used in the last 400 days, {first['NumberOfServicesNotAccessed']} never used "
        f"({len(pages)} page(s), {time.monotonic() - started:.1f}s)\n"
    )
    return 0
