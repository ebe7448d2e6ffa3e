"""The benchmark's results as tables: each observed model's days, the generous runs beside the
baseline, the fetch step's memory, the goals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from harness.bench.constants import STRESS_FAILURE_RATE, STRESS_JOB_CAP, SWEEP_ACCOUNTS

RUN_ROWS = (
    ("status", "execution"),
    ("targets_planned", "targets planned"),
    ("targets_collected", "  collected"),
    ("targets_carried", "  carried forward"),
    ("targets_without_data", "  without data yet"),
    ("iam_calls_per_target", "IAM calls / target"),
    ("generate_per_target", "  GenerateOrganizationsAccessReport"),
    ("get_per_target", "  GetOrganizationsAccessReport"),
    ("refusals_per_target", "  refused (ReportGenerationLimitExceeded)"),
    ("throttles_per_target", "  throttled (absorbed)"),
    ("rows_lost", "rows lost / targets not completed"),
    ("floor_seconds", "floor (s): max(2T/rate, latency/admitted)"),
    ("wall_seconds", "wall time (s, virtual)"),
    ("wall_to_floor", "wall / floor"),
    ("oldest_age_days", "oldest target's age after the run (d)"),
    ("iam_hours", "IAM time (h)"),
    ("lambda_invocations_per_target", "Lambda invocations / target"),
    ("state_transitions_per_target", "state transitions / target"),
    ("compute_seconds", "functions' computing (s, real CPU)"),
    ("real_seconds", "real time of the run (s)"),
    ("cost_usd", "cost of the run (USD)"),
)
GENEROUS_ROWS = (
    ("targets", "targets"),
    ("iam_calls_per_target", "IAM calls / target"),
    ("generate_per_target", "  GenerateOrganizationsAccessReport"),
    ("get_per_target", "  GetOrganizationsAccessReport"),
    ("throttling_errors", "Throttling answers (absorbed)"),
    ("limit_exceeded_errors", "ReportGenerationLimitExceeded (absorbed)"),
    ("rows_lost", "rows lost / targets not completed"),
    ("lambda_invocations_per_target", "Lambda invocations / target"),
    ("state_transitions_per_target", "state transitions / target"),
    ("parquet_files", "Parquet files in the snapshot"),
    ("rows", "rows in the snapshot"),
    ("parquet_files_per_million_rows", "files per 1M rows"),
    ("write_rows_per_second", "normalize+write rows/s"),
    ("wall_seconds", "wall time (s, virtual)"),
    ("floor_seconds", "floor (s): max(2T/rate, latency/admitted)"),
    ("wall_to_floor", "wall / floor"),
    ("paced_seconds", "seconds functions waited for their pace"),
    ("compute_seconds", "functions' computing (s, real CPU)"),
    ("cost_usd", "cost of the run (USD)"),
)


def _cell(figures: dict[str, Any] | None, key: str) -> str:
    if figures is None:
        return "-"
    by_op = figures.get("iam_calls_per_target_by_operation", {})
    if key == "generate_per_target":
        value: Any = by_op.get("GenerateOrganizationsAccessReport")
    elif key == "get_per_target":
        value = by_op.get("GetOrganizationsAccessReport")
    elif key == "rows_lost":
        value = f"{figures.get('rows_lost', '-')} / {figures.get('targets_not_completed', '-')}"
    else:
        value = figures.get(key, "-")
    if value is None:
        return "-"
    if isinstance(value, float) and (key.endswith(("per_target", "per_million_rows")) or key == "cost_usd"):
        return f"{value:,.4f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _grid(columns: dict[str, dict[str, Any] | None], rows: Sequence[tuple[str, str]], out: TextIO, width: int) -> None:
    header = f"{'':44}" + "".join(f"{name:>{width}}" for name in columns)
    out.write(header + "\n" + "-" * len(header) + "\n")
    for key, label in rows:
        cells = []
        for figures in columns.values():
            cell = _cell(figures, key)
            base = (figures or {}).get("baseline")
            if base and (key in base or key in ("generate_per_target", "get_per_target")):
                cell = f"{cell} | {_cell(base, key)}"
            cells.append(f"{cell:>{width}}")
        out.write(f"{label:44}" + "".join(cells) + "\n")


def print_days(name: str, size: str, summary: dict[str, Any], out: TextIO) -> None:
    """An observed model at one size: its first day, the day the backlog is gone, its steady state."""

    def title(label: str, day: dict[str, Any] | None) -> str:
        return f"{label} (d{day['day']})" if day else f"{label} (-)"

    out.write(f"\n{name}, {int(size):,} accounts, {len(summary['days'])} daily run(s):\n")
    columns = {
        title("first day", summary["first_day"]): summary["first_day"],
        title("backlog gone", summary["backlog_gone"]): summary["backlog_gone"],
        title("steady state", summary["steady_state"]): summary["steady_state"],
    }
    _grid(columns, RUN_ROWS, out, 22)
    scaled = (
        ""
        if summary["measured_at_accounts"] == SWEEP_ACCOUNTS
        else f", {summary['targets_daily_10000']:,} targets a day at the IAM time and cost per target measured here"
    )
    state = "steady state" if summary["steady_state"] else "last day, no steady state"
    money = ", ".join(
        f"{service} ${dollars}"
        for service, dollars in summary["steady_cost_by_service_usd_10000"].items()
        if service != "total"
    )
    out.write(
        f"  a daily run of {SWEEP_ACCOUNTS:,} accounts ({state}{scaled}): {summary['iam_hours_daily_10000']} h of "
        f"IAM time, ${summary['steady_cost_usd_10000']} ({money})\n"
        f"  a full sweep of the accounts: {summary['sweep_days'] or 'not within the days run'} day(s) here, "
        f"{summary['sweep_days_10000'] or '-'} for {SWEEP_ACCOUNTS:,} accounts\n"
    )


def print_table(results: dict[str, Any], out: TextIO) -> None:
    for name, sizes in results.get("models", {}).items():
        if name == "generous":
            continue
        for size, summary in sizes.items():
            print_days(name, size, summary, out)
    if results.get("sizes"):
        out.write("\ngenerous (one run; ours | the naive baseline):\n")
        columns: dict[str, dict[str, Any] | None] = {
            f"{int(size):,} accounts": figures for size, figures in results["sizes"].items()
        }
        if "stress" in results:
            columns[f"{results['stress']['accounts']:,} stressed"] = results["stress"]
        _grid(columns, GENEROUS_ROWS, out, 24)
        out.write(
            "(a | b: ours | the naive baseline, whose wall time is its computing time plus the seconds it slept;\n"
            f" stressed: {STRESS_FAILURE_RATE:.0%} of IAM calls throttled at random, IAM admits {STRESS_JOB_CAP} "
            "jobs)\n\nRatios (baseline / ours):\n"
        )
        for size, ours in results["sizes"].items():
            ratios = ours.get("ratios", {})
            out.write(f"  {size} accounts: " + ", ".join(f"{k} {v}x" for k, v in ratios.items()) + "\n")
    memory = results.get("fetch_memory")
    if memory and "error" not in memory:
        out.write("\nFetch step (one invocation, pages of 100 items):\n")
        for scale, probe_result in memory.items():
            out.write(
                f"  {scale:>3}: {probe_result['targets']} reports, {probe_result['pages']:,} pages, "
                f"{probe_result['rows']:,} rows -> peak RSS {probe_result['peak_rss_mib']} MiB "
                f"(after imports {probe_result['imports_rss_mib']} MiB)\n"
            )
    generate = results.get("generate_memory")
    if generate and "error" not in generate:
        out.write(
            f"Generate step (one invocation, a batch of {generate['targets']} reports, pages of 1,000 items): "
            f"peak RSS {generate['peak_rss_mib']} MiB (after imports {generate['imports_rss_mib']} MiB)\n"
        )
    out.write("\nGoals:\n")
    for goal, met in results["goals"].items():
        out.write(f"  {'met    ' if met['met'] else 'NOT MET'}  {goal}: {met['detail']}\n")
