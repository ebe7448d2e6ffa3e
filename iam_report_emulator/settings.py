"""How the emulated IAM report jobs behave: the IAM model, the time scale, and test hooks; and how fast the
account's Organizations reads may go."""

from __future__ import annotations

from dataclasses import dataclass, field

from iam_report_emulator.iam_model import OBSERVED, IamModel
from iam_report_emulator.scp import DEFAULT_PRINCIPAL_EXEMPT_DENIES, PRINCIPAL_EXEMPT_DENIES, PrincipalExemptDenies
from iam_report_emulator.throttling import RateLimit

TRACKING_DAYS = 400


@dataclass
class ReportSettings:
    """Mutable per management account; `configure` on the store replaces it."""

    # What IAM admits and how long its jobs take (`iam_model.MODELS`); observed by default.
    model: IamModel = OBSERVED
    # Every latency and the reuse window multiplied by this: the same model in less time.
    time_scale: float = 1.0
    # Overrides of the model, for tests: every job takes exactly this long; this many jobs at once.
    job_seconds: float | None = None
    max_jobs_in_progress: int | None = None
    # Pages carry at most this many items whatever MaxItems says (IsTruncated stays true).
    short_page_items: int | None = None
    # Fault injection: entity paths (no trailing slash) whose jobs end FAILED, and whose jobs never finish.
    failing_paths: frozenset[str] = frozenset()
    stuck_paths: frozenset[str] = frozenset()
    # Fault injection: (every, burst): after each `every` report calls, the next `burst` answer ServiceFailure (500).
    service_failure_bursts: tuple[int, int] | None = None
    # Fault injection: Organizations throttles per account (AWS documents that, not the rate): every
    # Organizations call of this account takes a token from one bucket of this rate and burst, and one
    # that finds none is answered `TooManyRequestsException` (400). None: Organizations never throttles.
    organizations_rate_limit: RateLimit | None = None
    # Display names that differ from the catalog's (IAM's report names are not always the
    # Service Authorization Reference's titles).
    service_names: dict[str, str] = field(default_factory=dict)
    # Job ids handed out before falling back to random UUIDs (for replaying documented examples).
    job_ids: list[str] = field(default_factory=list)
    # How a Deny whose Condition only exempts principals by ARN (the break-glass form) is read, as IAM's
    # treatment is unknown: "ignored" removes nothing (as any conditional Deny), "applied" counts it as
    # unconditional (`scp.py`'s docstring).
    principal_exempt_denies: PrincipalExemptDenies = DEFAULT_PRINCIPAL_EXEMPT_DENIES

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")
        if self.job_seconds is not None and self.job_seconds < 0:
            raise ValueError(f"job_seconds must be >= 0, got {self.job_seconds}")
        if self.max_jobs_in_progress is not None and self.max_jobs_in_progress < 1:
            raise ValueError(f"max_jobs_in_progress must be >= 1, got {self.max_jobs_in_progress}")
        if self.short_page_items is not None and self.short_page_items < 1:
            raise ValueError(f"short_page_items must be >= 1, got {self.short_page_items}")
        if self.principal_exempt_denies not in PRINCIPAL_EXEMPT_DENIES:
            raise ValueError(
                f"principal_exempt_denies must be one of {', '.join(map(repr, PRINCIPAL_EXEMPT_DENIES))}, "
                f"got {self.principal_exempt_denies!r}"
            )
        if self.service_failure_bursts is not None and min(self.service_failure_bursts) < 1:
            raise ValueError(f"service_failure_bursts must be two counts >= 1, got {self.service_failure_bursts}")
        bad_ids = [job_id for job_id in self.job_ids if len(job_id) != 36]
        if bad_ids:
            raise ValueError(f"job_ids must be 36 characters long: {bad_ids}")

    @property
    def job_cap(self) -> int:
        return self.max_jobs_in_progress or self.model.max_jobs_in_progress

    @property
    def reuse_seconds(self) -> float:
        return self.model.reuse_seconds * self.time_scale
