"""`python -m sandbox demo`: the sandbox end to end, as a person sees it.

With the sandbox server up and an organization seeded, assumes a reporter role (one session for the whole
run, as IAM's report-owner rule requires), generates the root's access report, waits for it, reads
every page and prints the report as a table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from sandbox.clients import role_session_client
from sandbox.seed import OrganizationSpec
from sandbox.server import Endpoint

REPORTER_ROLE = "OrgAccessReportReader"


def reporter_iam_client(endpoint: Endpoint, account_id: str, session_name: str) -> Any:
    """An IAM client acting as the reporter role's session `session_name`."""
    role_arn = f"arn:aws:iam::{account_id}:role/{REPORTER_ROLE}"
    return role_session_client("iam", role_arn, session_name, endpoint_url=endpoint.url)


def read_report(iam: Any, job_id: str, poll_seconds: float = 0.5, timeout: float = 120.0) -> Iterator[dict[str, Any]]:
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


def _cell(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return "-" if value is None else str(value)


def print_table(rows: list[list[object]], headers: list[str], out: TextIO) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def run_demo(out: TextIO, endpoint: Endpoint, spec: OrganizationSpec) -> int:
    """Generate, wait for and print the root's report of the seeded organization `spec`."""
    started = time.monotonic()
    session = f"demo-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
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
