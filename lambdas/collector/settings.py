"""Every tunable of the collector, declared once: its name, type, default, bounds and description.

The declarations are grouped by what consumes them. Everything else is derived from them:
- the CDK context model (`infra.config.CollectorConfig`: every group, unknown keys refused);
- each function's environment model (`lambdas.collector.config`: the groups that function reads,
  with the same name upper-cased as its environment variable);
- the environment the stack gives each function (`environment`: the values of those same fields);
- the per-execution overrides (`RUN_OPTIONS`: the groups marked `per_run`, each field optional);
- the README's configuration table (`python -m infra.docs`, checked by a test).

Adding a setting is one field here, plus its use.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, field_validator

from lambdas.collector.models import POLICY_ID, ROLE_ARN, TARGET_ID, Polling, Scope, normalize_target_id
from lambdas.collector.names import DATA_PREFIX

TargetIdList = list[Annotated[str, StringConstraints(pattern=TARGET_ID)]]
Namespace = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,64}$")]
ExternalId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$")]  # STS's own rule
# A principal ARN as `aws:PrincipalARN` sees it (a role's ARN, not its session's), wildcards allowed.
PrincipalArnPattern = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::(\d{12}|\*|\?+):[A-Za-z0-9_+=,.@/*?-]{1,512}$")
]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]  # a typo check: SNS confirms

# A run's time budget is at most a day; the state machine's timeout is that plus the time a run needs after
# its budget is spent (the jobs it started finish or are given up, finalize, alert), so a run of the
# largest budget ends by its deadline, never by the timeout.
RUN_BUDGET_MAX_SECONDS = 86_400
RUN_FINISH_SECONDS = 7_200

# CloudWatch Logs' allowed retention periods, in days, with the name CDK's RetentionDays gives each.
LOG_RETENTION: dict[int, str] = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
    1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}  # fmt: skip


def _bare_ids(ids: Any) -> Any:
    """An id given as a path, or with a trailing '/' (as Organizations' `Path` fields end), is its bare id."""
    return [normalize_target_id(i) if isinstance(i, str) else i for i in ids] if isinstance(ids, list) else ids


class Tunables(BaseModel):
    """A group of settings. `per_run`: an execution's input may override them for that run."""

    per_run: ClassVar[bool] = False


class Selection(Tunables):
    """Which targets a run collects (discover)."""

    per_run: ClassVar[bool] = True

    scope: Scope = Field(
        default=Scope.ALL, description="targets: `all` (root, every OU, every account), `root`, `ous`, `accounts`"
    )
    include_ids: TargetIdList = Field(default=[], description="root/OU/account ids: collect only these subtrees")
    exclude_ids: TargetIdList = Field(default=[], description="root/OU/account ids: skip these subtrees")
    policy_ids: list[Annotated[str, StringConstraints(pattern=POLICY_ID)]] = Field(
        default=[], description="SCP ids: also one report per target narrowed to each policy"
    )
    include_management_account: bool = Field(
        default=False, description="SCPs never apply to the management account; include it anyway"
    )
    account_refresh_days: int = Field(
        default=7,
        ge=1,
        le=365,
        description="member accounts are collected on this cadence (root and OUs every run): an account is due "
        "once its data is this many days old less one; new accounts, and accounts under an OU whose report "
        "changed, come first; a target whose data is older than this is reported stale",
    )
    run_budget_seconds: int = Field(
        default=72_000,
        ge=60,
        le=RUN_BUDGET_MAX_SECONDS,
        description="the time a run may spend on IAM reports (default 20 h, well before the next daily start): "
        "a run plans no more accounts than fit at the expected report time and the job cap IAM has admitted, "
        "and starts no job once it is spent; the rest is the next run's first work",
    )

    _bare_ids = field_validator("include_ids", "exclude_ids", mode="before")(_bare_ids)


class Pace(Tunables):
    """How fast a run calls IAM and how it waits for report jobs (discover; carried in the run's context)."""

    per_run: ClassVar[bool] = True

    batch_size: int = Field(default=100, ge=1, le=250, description="targets per Distributed Map item")
    iam_calls_per_second: float = Field(
        default=20,
        gt=0,
        le=1000,
        description="upper bound of the account's rate of IAM report calls (AWS publishes none): the rate is "
        "learned below it (halved on a throttle, grown back slowly), and each running batch paces its calls to "
        "an equal share",
    )
    iam_max_jobs_in_progress: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="upper bound of IAM's cap on report jobs in progress (AWS does not publish it; one was "
        "observed live): the cap is learned below it, starting at one and probing upward now and then, and "
        "shared by every batch; no more batches run at once than it has admitted. The default leaves room "
        "for the call rate to bind: at 20 calls a second, 10 reports a second of ~10 s each keep ~100 in "
        "progress",
    )
    poll_initial_wait_seconds: int = Field(
        default=10,
        ge=0,
        le=3600,
        description="how long a report is first expected to take (observed live: 5-12 s, median 9.7); a batch "
        "then learns it from IAM's creation and completion dates (and raises it by half when a poll finds a job "
        "still running)",
    )
    poll_max_wait_seconds: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="cap of the backoff between polls of a job found still running (polled again once it has run "
        "half as long again)",
    )
    poll_max_attempts: int = Field(
        default=40,
        ge=1,
        le=500,
        description="polls before a job is recorded `TIMED_OUT` (the state machine's loop bound derives from "
        "it; a run may lower it, not raise it)",
    )
    poll_inline_wait_seconds: int = Field(
        default=20,
        ge=0,
        le=60,
        description="a job due within this is waited for inside the invocation rather than through another "
        "round of Choice, Wait and Poll (longer than the slowest report observed, 11.7 s, half as long again: "
        "one job at a time stays in one invocation)",
    )

    @property
    def polling(self) -> Polling:
        return Polling(
            initial_wait_seconds=self.poll_initial_wait_seconds,
            max_wait_seconds=self.poll_max_wait_seconds,
            max_attempts=self.poll_max_attempts,
            inline_wait_seconds=self.poll_inline_wait_seconds,
        )


class Lanes(Tunables):
    """How many batches run at once (the state machine's Distributed Map, and discover's batching)."""

    max_concurrency: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="most batches collected at once: the Distributed Map runs as many as IAM has admitted jobs "
        "at once, up to this (`MaxConcurrencyPath`; discover measures the cap first when less is known); one "
        "lane makes one IAM call at a time, so reaching the call rate takes several; discover makes the number "
        "of batches a multiple of the lanes, with equal sizes",
    )


class Location(Tunables):
    """Where the data lives in the data bucket (discover decides it for the run; infra grants it)."""

    data_prefix: str = Field(
        default="", pattern=DATA_PREFIX, description="key prefix in the data bucket, ending in `/`"
    )


class Reporting(Tunables):
    """The reporter session every IAM report and Organizations call goes through (discover, generate, poll, fetch)."""

    external_id: ExternalId | None = Field(
        default=None, description="cross-account mode: the reporter role's ExternalId"
    )
    report_session_seconds: int = Field(
        default=3600, ge=900, le=43200, description="duration of the reporter role's session"
    )
    safety_margin_seconds: int = Field(
        default=30,
        ge=1,
        le=600,
        description="generate, poll and fetch stop starting IAM calls when less than this remains of the "
        "invocation, and hand the rest of the batch back to the state machine",
    )


class Snapshot(Tunables):
    """The day's snapshot (finalize)."""

    rows_per_file: int = Field(
        default=4_000_000,
        ge=1_000,
        le=50_000_000,
        description="rows per Parquet file of a day's access_details, as the day's first run sizes it (a rerun "
        "that day keeps its files, so each target stays in the same one)",
    )


class Alerting(Tunables):
    """What the alert reports (alert)."""

    unused_after_days: int = Field(
        default=90, ge=1, le=400, description="a service last used longer ago than this counts as unused"
    )
    allowlist: list[Namespace] = Field(default=[], description="service namespaces never reported as unused")
    allowlist_by_target: dict[Annotated[str, StringConstraints(pattern=TARGET_ID)], list[Namespace]] = Field(
        default={}, description='`{"ou-…": ["gamelift"]}`: allowlist per root/OU/account and its subtree'
    )
    always_send_summary: bool = Field(
        default=False, description="publish a summary even when nothing is unused or failed"
    )
    alert_min_unused: int = Field(
        default=1,
        ge=1,
        description="unused services needed before publishing (newly unused or failed jobs always publish)",
    )
    alert_max_targets: int = Field(
        default=8,
        ge=1,
        le=8,
        description="lines per section of the alert (changes, failures, proposals, where most is unused); each "
        "section also has its own cap, so the message fits one screen (60 lines) at any size",
    )
    alert_top_services: int = Field(
        default=10, ge=1, le=10, description="service namespaces named per changed root, OU or account"
    )


# Never proposed for denial, whatever their use: the services people and tools need to reach an account,
# see what is wrong and get help, above all on the day something breaks. sts: every role assumption,
# the break-glass one included; iam: fixing permissions; signin, sso, identitystore: people signing in
# through the console and IAM Identity Center; organizations and account: the account's own settings
# and contacts; support and health: opening a case, reading AWS Health events. Their disuse in a scope
# is normal (they are used from elsewhere or rarely) and is no evidence that they can go.
NEVER_DENY = ("account", "health", "iam", "identitystore", "organizations", "signin", "sso", "sts", "support")


class GuardrailException(BaseModel):
    """Services one root, OU or account (and its subtree) keeps, until `expires`, for `reason`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_id: Annotated[str, StringConstraints(pattern=TARGET_ID)]
    services: list[Namespace] = Field(min_length=1)
    expires: date
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("target_id", mode="before")
    @classmethod
    def _bare_id(cls, value: Any) -> Any:
        return normalize_target_id(value) if isinstance(value, str) else value


class GuardrailTargets(Tunables):
    """Which targets get guardrail recommendations (discover reads their attached SCPs, recommend proposes)."""

    guardrail_accounts: bool = Field(
        default=False,
        description="also recommend per account (roots and OUs always): discover then lists each collected "
        "account's attached SCPs, one more Organizations call per account",
    )


class Guardrails(Tunables):
    """How SCP recommendations are made (recommend)."""

    guardrail_window_days: int = Field(
        default=90,
        ge=1,
        le=400,
        description="an OU's or account's service unused this many days (IAM's last use in the whole scope, "
        "as of the report) is proposed for denial; IAM tracks 400 days",
    )
    guardrail_root_window_days: int = Field(
        default=180,
        ge=1,
        le=400,
        description="the same for the root, longer by default: a root SCP binds every account, present and "
        "future, and rare yearly work (audits, disaster recovery tests) must not be cut off",
    )
    guardrail_never_deny: list[Namespace] = Field(
        default=list(NEVER_DENY),
        description="service namespaces never proposed for denial (default: access, identity and support)",
    )
    guardrail_exceptions: list[GuardrailException] = Field(
        default=[],
        description='`[{"target_id": "ou-…", "services": ["gamelift"], "expires": "2027-06-30", "reason": '
        '"…"}]`: services a root/OU/account and its subtree keep until the date; an expired one is dropped '
        "and said so",
    )
    guardrail_break_glass_arns: list[PrincipalArnPattern] = Field(
        default=[],
        description="principal ARNs (wildcards allowed) every proposed SCP exempts, with `ArnNotLike` on "
        "`aws:PrincipalARN`",
    )
    scp_max_chars: int = Field(
        default=5_120,
        ge=512,
        le=10_240,
        description="largest proposed SCP, counted as UTF-8 bytes of its minified JSON (AWS's pages say 5,120 "
        "characters or bytes; raised to 10,240 in 2026): proposals are split into several SCPs to fit",
    )
    scp_max_per_target: int = Field(
        default=10,
        ge=1,
        le=50,
        description="SCPs a root, OU or account may have attached (10 since May 2026, 5 before): a proposal "
        "never needs more than the slots left beside the SCPs attached now",
    )


class Page(Tunables):
    """The day's report page (report)."""

    report_trend_days: int = Field(
        default=90, ge=2, le=400, description="days of history in the page's trend of unused services"
    )


class Deployment(Tunables):
    """What only the CDK app reads: schedule, subscribers, roles, retention, Athena."""

    schedule: str = Field(
        default="cron(0 3 * * ? *)",
        pattern=r"^(cron|rate)\(.+\)$",
        description="EventBridge Scheduler expression (`cron(…)` or `rate(…)`); daily by default",
    )
    time_zone: str = Field(default="UTC", description="IANA time zone of the schedule")
    alert_emails: list[Email] = Field(default=[], description="e-mail addresses subscribed to the alert topic")
    reporter_role_arn: Annotated[str, StringConstraints(pattern=ROLE_ARN)] | None = Field(
        default=None,
        description="cross-account mode: the reporter role in the management account (else created here)",
    )
    retention_days: int | None = Field(
        default=None, ge=1, description="delete snapshots after this many days (`null`: keep)"
    )
    scratch_days: int = Field(
        default=7, ge=1, description="delete a run's scratch objects (`runs/`) after this many days"
    )
    log_retention_days: int = Field(
        default=30,
        description="Lambda and Step Functions log retention (a CloudWatch Logs period: 1, 3, 5, 7, 14, 30, 60, 90, …)",
    )
    tolerated_failures: int = Field(
        default=0, ge=0, description="failed batches the run tolerates (their targets are recorded `NOT_COLLECTED`)"
    )
    database_name: str = Field(
        default="org_access_report",
        pattern=r"^[a-z0-9_]{1,255}$",
        description="Glue database, and the Athena workgroup's name",
    )
    bytes_scanned_cutoff: int = Field(
        default=10 * 1024**3,
        ge=10 * 1024**2,
        description="the workgroup's per-query scan limit in bytes (10 GiB)",
    )

    @field_validator("log_retention_days")
    @classmethod
    def _a_cloudwatch_retention(cls, days: int) -> int:
        if days not in LOG_RETENTION:
            raise ValueError(f"must be one of CloudWatch Logs' retention periods: {sorted(LOG_RETENTION)}")
        return days


GROUPS: tuple[type[Tunables], ...] = (
    Selection,
    Pace,
    Lanes,
    Location,
    Reporting,
    Snapshot,
    GuardrailTargets,
    Guardrails,
    Page,
    Alerting,
    Deployment,
)


def _optional(annotation: Any, metadata: list[Any]) -> Any:
    constrained = Annotated[(annotation, *metadata)] if metadata else annotation
    return constrained | None


def _run_options() -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (_optional(info.annotation, info.metadata), Field(default=None, description=info.description))
        for group in GROUPS
        if group.per_run
        for name, info in group.model_fields.items()
    }
    return create_model(
        "RunOptions",
        __base__=_RunOptions,
        __doc__="An execution's input: any run-shaping setting, for this run only.",
        **fields,
    )


class _RunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    _bare_ids = field_validator("include_ids", "exclude_ids", mode="before", check_fields=False)(_bare_ids)


# The execution input's model: every `per_run` setting, optional; unknown keys are refused by name.
RUN_OPTIONS = _run_options()


def environment_value(value: Any) -> str | None:
    """A setting's value as its environment variable holds it (JSON for lists and maps), None: unset."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return f"{value:g}" if isinstance(value, float) else str(value)


def environment(model: type[BaseModel], values: BaseModel) -> dict[str, str]:
    """The environment variables of a function whose settings are `model`: every field of `model`
    that `values` (the deployment's configuration) has, upper-cased, with its value."""
    dumped = values.model_dump(mode="json")
    out: dict[str, str] = {}
    for name in model.model_fields:
        if name in dumped and (text := environment_value(dumped[name])) is not None:
            out[name.upper()] = text
    return out
