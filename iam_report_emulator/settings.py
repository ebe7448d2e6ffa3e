"""How the emulated IAM report jobs behave: latency, limits, failures and page sizes."""

from __future__ import annotations

from dataclasses import dataclass, field

# AWS does not document its cap on concurrent report jobs; 50 keeps the limit reachable in tests
# and leaves room for a realistic collector.
DEFAULT_MAX_JOBS_IN_PROGRESS = 50
DEFAULT_JOB_SECONDS = 3.0
TRACKING_DAYS = 400


@dataclass
class ReportSettings:
    """Mutable per management account; `configure` on the store replaces it."""

    job_seconds: float = DEFAULT_JOB_SECONDS
    max_jobs_in_progress: int = DEFAULT_MAX_JOBS_IN_PROGRESS
    # Pages carry at most this many items whatever MaxItems says (IsTruncated stays true).
    short_page_items: int | None = None
    # Entity paths (no trailing slash) whose jobs end FAILED, and whose jobs never finish.
    failing_paths: frozenset[str] = frozenset()
    stuck_paths: frozenset[str] = frozenset()
    # Display names that differ from the catalog's (IAM's report names are not always the
    # Service Authorization Reference's titles).
    service_names: dict[str, str] = field(default_factory=dict)
    # Job ids handed out before falling back to random UUIDs (for replaying documented examples).
    job_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.job_seconds < 0:
            raise ValueError(f"job_seconds must be >= 0, got {self.job_seconds}")
        if self.max_jobs_in_progress < 1:
            raise ValueError(f"max_jobs_in_progress must be >= 1, got {self.max_jobs_in_progress}")
        if self.short_page_items is not None and self.short_page_items < 1:
            raise ValueError(f"short_page_items must be >= 1, got {self.short_page_items}")
        bad_ids = [job_id for job_id in self.job_ids if len(job_id) != 36]
        if bad_ids:
            raise ValueError(f"job_ids must be 36 characters long: {bad_ids}")
