"""Named organizations: `example` (the boto3 documentation's), `demo`, and sized ones for benchmarks.

`apply_preset` seeds moto and configures the report store; it returns the spec (the ground truth).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from iam_report_emulator.iam_extension import store_for_account
from iam_report_emulator.loader import load_organization
from iam_report_emulator.seed import (
    Account,
    Activity,
    OrganizationSpec,
    OrgUnit,
    Scp,
    generate_organization,
    policy_document,
)

# The documented example of get_organizations_access_report (boto3 / IAM API reference).
EXAMPLE_JOB_ID = "examplea-1234-b567-cde8-90fg123abcd4"
EXAMPLE_ORG = "o-a1b2c3d4e5"
EXAMPLE_ROOT = "r-f6g7h8i9j0example"
EXAMPLE_OU = "ou-1a2b3c-k9l8m7n6o5example"
EXAMPLE_OU_PATH = f"{EXAMPLE_ORG}/{EXAMPLE_ROOT}/{EXAMPLE_OU}"
EXAMPLE_CREATED = datetime(2019, 6, 18, 19, 47, 31, tzinfo=UTC)
EXAMPLE_JOB_SECONDS = 4.0  # the documented completion is 19:47:35
# The documentation does not say which account is the management account; 123456789012 is a member
# of the OU there, so the preset's management account is another one.
EXAMPLE_MANAGEMENT_ACCOUNT = "999988887777"
EXAMPLE_SERVICE_NAMES = {
    "dynamodb": "Amazon DynamoDB",
    "iam": "AWS Identity and Access Management",
    "s3": "Amazon Simple Storage Service",
}
DEMO_ACCOUNT = "123456789012"  # moto's default account: plain test credentials act as it


def example_spec() -> OrganizationSpec:
    spec = OrganizationSpec(
        organization_id=EXAMPLE_ORG,
        root_id=EXAMPLE_ROOT,
        management_account_id=EXAMPLE_MANAGEMENT_ACCOUNT,
        now=EXAMPLE_CREATED,
    )
    spec.ous = [OrgUnit(EXAMPLE_OU, "Example", EXAMPLE_ROOT)]
    members = ("111122223333", "123456789012", "444455556666", "777788889999")
    spec.accounts = [Account(a, f"example-{a}", EXAMPLE_OU, joined=EXAMPLE_CREATED) for a in members]
    allow = policy_document("Allow", ["dynamodb:*", "iam:*", "s3:*"])
    spec.scps = [Scp("p-examplea1b2", "ExampleAllowList", allow, (EXAMPLE_OU,))]
    spec.full_access_detached = {EXAMPLE_OU}

    def at(month: int, day: int, hour: int, minute: int, second: int) -> datetime:
        return datetime(2019, month, day, hour, minute, second, tzinfo=UTC)

    spec.activity = [
        Activity("111122223333", "dynamodb", at(5, 25, 16, 29, 52), "us-east-1"),
        Activity("444455556666", "dynamodb", at(4, 2, 9, 0, 0), "eu-west-1"),
        Activity("123456789012", "iam", at(6, 15, 13, 12, 6), "us-east-1"),
        Activity("111122223333", "iam", at(6, 1, 8, 0, 0), "us-east-1"),
        Activity("444455556666", "iam", at(5, 20, 8, 0, 0), "us-east-1"),
        Activity("777788889999", "iam", at(3, 3, 8, 0, 0), "us-east-1"),
    ]
    return spec


@dataclass(frozen=True)
class Preset:
    description: str
    build: Callable[[int, datetime], OrganizationSpec]


def _sized(accounts: int) -> Callable[[int, datetime], OrganizationSpec]:
    def build(seed: int, now: datetime) -> OrganizationSpec:
        return generate_organization(accounts=accounts, seed=seed, now=now, management_account_id=DEMO_ACCOUNT)

    return build


PRESETS: dict[str, Preset] = {
    "example": Preset("the boto3 documentation's example (frozen at 2019-06-18)", lambda _seed, _now: example_spec()),
    "demo": Preset("a few OUs and about a dozen accounts", _sized(12)),
    "small": Preset("100 accounts", _sized(100)),
    "medium": Preset("1,000 accounts", _sized(1_000)),
    "large": Preset("10,000 accounts", _sized(10_000)),
}


def build_spec(
    preset: str, seed: int = 7, now: datetime | None = None, accounts: int | None = None
) -> OrganizationSpec:
    """The spec of a preset, or of a generated organization of `accounts` accounts."""
    moment = now or datetime.now(UTC)
    if accounts is not None:
        return _sized(accounts)(seed, moment)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset].build(seed, moment)


def apply_preset(
    preset: str, seed: int = 7, now: datetime | None = None, accounts: int | None = None
) -> OrganizationSpec:
    """Seed moto with a preset's organization (inside `mock_aws` or a server process)."""
    spec = build_spec(preset, seed, now, accounts)
    load_organization(spec)
    store = store_for_account(spec.management_account_id)
    if preset == "example" and accounts is None:
        store.clock.freeze(EXAMPLE_CREATED)
        store.configure(job_seconds=EXAMPLE_JOB_SECONDS, job_ids=[EXAMPLE_JOB_ID], service_names=EXAMPLE_SERVICE_NAMES)
    return spec
