"""An emulator of IAM's Organizations access report, as a moto extension.

It adds `GenerateOrganizationsAccessReport` and `GetOrganizationsAccessReport` to moto's IAM, answered
from moto's own Organizations (the tree, the SCPs attached along an entity path) and a seeded record of
which account last used which service: validation as the botocore model constrains it, jobs that take
time, the report-owner rule, the concurrent-job limit, throttling, pages and sort orders. Beside them, two
things moto leaves out that the collector meets first: STS evaluates a role's trust policy on AssumeRole
(`sts_extension`, `trust`), and Organizations throttles an account's calls (`organizations_extension`, at
`ReportSettings.organizations_rate_limit`). It depends on moto and policy_sentry (services' actions; the
list of services and their names are IAM's own, captured live in `data/`) only.

In a test, under moto's `mock_aws`::

    import boto3
    from moto import mock_aws

    import iam_report_emulator

    iam_report_emulator.install()  # once per process, before the first request
    with mock_aws():
        spec = iam_report_emulator.apply_preset("demo")  # organization, SCPs, activity: the ground truth
        iam_report_emulator.store_for_account(spec.management_account_id).configure(job_seconds=0)
        iam = boto3.client("iam", region_name="us-east-1")
        job = iam.generate_organizations_access_report(EntityPath=f"{spec.organization_id}/{spec.root_id}")
        report = iam.get_organizations_access_report(JobId=job["JobId"])
        assert report["JobStatus"] == "COMPLETED"

As an endpoint for any SDK or the AWS CLI: `python -m iam_report_emulator serve`, or
`iam_report_emulator.server.EmulatorServer` in-process (a context manager yielding the endpoint).
"""

from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.iam_extension import REPORT_OPERATIONS, install, report_store, store_for_account
from iam_report_emulator.loader import load_organization
from iam_report_emulator.presets import PRESETS, apply_preset
from iam_report_emulator.seed import OrganizationSpec, generate_organization
from iam_report_emulator.settings import ReportSettings
from iam_report_emulator.throttling import RateLimit

__all__ = [
    "PRESETS",
    "REPORT_OPERATIONS",
    "AccessReportStore",
    "OrganizationSpec",
    "RateLimit",
    "ReportSettings",
    "apply_preset",
    "generate_organization",
    "install",
    "load_organization",
    "report_store",
    "store_for_account",
]
