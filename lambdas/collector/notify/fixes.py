"""What an operator does about a report job that did not complete: one line per error code.

The codes are IAM's (a job that ended FAILED, or a report call refused for good) and the
collector's own (`lambdas.collector.collect.jobs`, `lambdas.collector.store.snapshot`). A code
without an entry gets no line: the alert shows its message alone.
"""

from __future__ import annotations

# The Organizations reads IAM's report job makes as its caller (observed live): DescribePolicy,
# ListParents, ListPoliciesForTarget and ListRoots always, ListChildren for a report over all SCPs,
# ListTargetsForPolicy for one narrowed to an SCP. A caller missing one gets a job that ends FAILED
# with ORGANIZATIONS_REPORT_ACCESS_DENIED, not a refused call.
REPORT_JOB_READS: tuple[str, ...] = (
    "organizations:DescribePolicy",
    "organizations:ListChildren",
    "organizations:ListParents",
    "organizations:ListPoliciesForTarget",
    "organizations:ListRoots",
    "organizations:ListTargetsForPolicy",
)
_READS = "organizations:" + ", ".join(action.removeprefix("organizations:") for action in REPORT_JOB_READS)

# When the run did not say which role its report calls went through.
SOME_REPORTER_ROLE = "the reporter role"

# `{role}`: the reporter role's ARN (or SOME_REPORTER_ROLE).
FIXES: dict[str, str] = {
    # IAM's, for a job that ended FAILED
    "ORGANIZATIONS_REPORT_ACCESS_DENIED": f"allow {{role}} {_READS}",
    "INVALID_ORGANIZATIONS_ENTITY_PATH": (
        "the entity moved or left the organization after discover walked it: the next run uses its current path"
    ),
    "INVALID_ORGANIZATIONS_POLICY": "the SCP no longer exists in the organization: remove it from policy_ids",
    # IAM's, for a call refused for good
    "AccessDenied": (
        "allow {role} iam:GenerateOrganizationsAccessReport on access-report/* and "
        "iam:GetOrganizationsAccessReport; it must be in the organization's management account"
    ),
    "NoSuchEntity": (
        "IAM shows a job only to the principal that generated it: generate, poll and fetch must use the same "
        "REPORT_ROLE_ARN; the next run starts a new job"
    ),
    # The collector's own
    "TimedOut": (
        "IAM had not finished after poll_max_attempts polls: the next run starts a new job; if it recurs, "
        "raise poll_max_wait_seconds"
    ),
    "NotStarted": (
        "IAM's cap on jobs in progress stayed full (another principal generating reports in the account, or "
        "iam_max_jobs_in_progress above the cap IAM admits: 1 observed); the next run retries"
    ),
    "NotCollected": "its batch failed before recording it (see the execution's Map run): the next run retries",
    "RowCountMismatch": "the pages read do not add up to the report's counts: the next run collects it again",
}


def fix_for(code: str | None, reporter_role: str | None = None) -> str | None:
    """The fix for a job that ended with `code`, naming `reporter_role` where the fix is to it."""
    fix = FIXES.get(code or "")
    return fix.replace("{role}", reporter_role or SOME_REPORTER_ROLE) if fix else None
