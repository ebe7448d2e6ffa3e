"""The issue's goals, judged over every run measured."""

from __future__ import annotations

from typing import Any

from harness.bench.constants import SWEEP_ACCOUNTS

GOALS = {
    "iam_calls_per_target": 2.2,
    "state_transitions_per_target": 0.3,
    "wall_to_floor_observed": 1.15,
    "wall_to_floor_generous": 1.25,
    "parquet_files_per_million_rows": 1.0,
    "write_rate_vs_baseline": 3.0,
    "cost_usd_10000": 0.05,
    "daily_iam_hours_10000": 12.0,
    "oldest_age_days": 7,
    "steady_cost_usd_10000": 0.30,
}


def _runs(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every run measured, by a name: each day of each observed model and size, each generous run."""
    runs: dict[str, dict[str, Any]] = {}
    for name, sizes in results.get("models", {}).items():
        for size, entry in sizes.items():
            if name == "generous":
                runs[f"generous {size}"] = entry
            else:
                runs.update({f"{name} {size} d{day['day']}": day for day in entry["days"]})
    if "stress" in results:
        runs[f"stressed {results['stress']['accounts']}"] = results["stress"]
    return runs


def _worst(runs: dict[str, dict[str, Any]], key: str) -> tuple[float, str]:
    measured = [(float(run[key]), name) for name, run in runs.items() if run.get(key) is not None]
    return max(measured, default=(0.0, "-"))


def _largest(results: dict[str, Any], model: str) -> tuple[str, dict[str, Any]] | None:
    sizes = results.get("models", {}).get(model, {})
    return max(sizes.items(), key=lambda item: int(item[0])) if sizes else None


def judge(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each goal of the issue, over every run measured."""
    runs = _runs(results)
    # The models' runs; the stressed run is judged by its own goal (its throttled attempts are calls: with
    # 10% of calls throttled at random, two answered calls take 2 / 0.9 = 2.22 attempts on average).
    modelled = {name: run for name, run in runs.items() if not name.startswith("stressed ")}
    goals: dict[str, dict[str, Any]] = {}
    for key, label in (
        ("iam_calls_per_target", "IAM calls / target <= 2.2 (refused starts and polls included), every model"),
        ("state_transitions_per_target", "state_transitions_per_target <= 0.3"),
        ("parquet_files_per_million_rows", "<= 1 Parquet file per 1M rows"),
    ):
        value, where = _worst(modelled if key == "iam_calls_per_target" else runs, key)
        goals[label] = {"met": value <= GOALS[key], "detail": f"worst {value} ({where})"}
    limits = {"generous": GOALS["wall_to_floor_generous"]}
    details, met = [], True
    for name in results.get("models", {}):
        mine = {run_name: run for run_name, run in runs.items() if run_name.startswith(f"{name} ")}
        value, where = _worst(mine, "wall_to_floor")
        met &= value <= limits.get(name, GOALS["wall_to_floor_observed"])
        later = {run_name: run for run_name, run in mine.items() if not run_name.endswith(" d1")}
        after_day_one = f", after day 1 {_worst(later, 'wall_to_floor')[0]}" if name != "generous" and later else ""
        details.append(f"{name} worst {value} ({where}){after_day_one}")
    goals["wall / floor <= 1.15 (observed), <= 1.25 (generous)"] = {"met": met, "detail": "; ".join(details)}
    _judge_baseline(results, goals)
    _judge_observed(results, goals)
    problems = [
        f"{name}: {run['status']}, {run['duplicate_targets']} twice, {run['missing_targets']} missing, "
        f"{run['rows_lost']} rows lost, {run['targets_not_completed']} not completed"
        for name, run in runs.items()
        if run["status"] != "SUCCEEDED"
        or run["duplicate_targets"] + run["missing_targets"] + run["rows_lost"] + run["targets_not_completed"]
    ]
    absorbed = sum(run["limit_exceeded_errors"] for run in runs.values())
    throttles = sum(run["throttling_errors"] for run in runs.values())
    goals["nothing lost: every target once in every day's partition, refusals and throttles absorbed"] = {
        "met": not problems,
        "detail": "; ".join(problems[:5])
        or f"{len(runs)} runs; {absorbed} ReportGenerationLimitExceeded and {throttles} Throttling answers absorbed",
    }
    stress = results.get("stress")
    if stress:
        goals["the stressed run keeps its guarantees"] = {
            "met": stress["throttling_errors"] > 0 and f"stressed {stress['accounts']}" not in " ".join(problems),
            "detail": f"{stress['throttling_errors']} Throttling + {stress['limit_exceeded_errors']} limit answers, "
            f"{stress['rows_lost']} rows lost, {stress['targets_not_completed']} targets not completed, "
            f"{stress['iam_calls_per_target']} calls / target (throttled attempts included)",
        }
    return goals


def _judge_baseline(results: dict[str, Any], goals: dict[str, dict[str, Any]]) -> None:
    sizes: dict[str, dict[str, Any]] = results.get("sizes", {})
    with_base = {size: s for size, s in sizes.items() if "baseline" in s}
    if with_base:
        rates = {size: s["ratios"]["write_rows_per_second"] for size, s in with_base.items()}
        goals["write rate >= 3 x baseline"] = {
            "met": all(v >= GOALS["write_rate_vs_baseline"] for v in rates.values()),
            "detail": ", ".join(f"{size}: {v}x" for size, v in rates.items()),
        }
    memory = results.get("fetch_memory")
    if memory and "error" in memory:
        goals["fetch peak memory flat as the report grows 10x"] = {"met": False, "detail": memory["error"]}
    elif memory:
        one, ten = memory["1x"], memory["10x"]
        goals["fetch peak memory flat as the report grows 10x"] = {
            "met": ten["peak_rss_mib"] <= 1.15 * one["peak_rss_mib"],
            "detail": f"{one['rows']:,} rows: {one['peak_rss_mib']} MiB; {ten['rows']:,} rows: "
            f"{ten['peak_rss_mib']} MiB (imports alone {one['imports_rss_mib']} MiB)",
        }
    if "10000" in sizes:
        goals["cost of a 10,000-account run <= $0.05 (generous)"] = {
            "met": sizes["10000"]["cost_usd"] <= GOALS["cost_usd_10000"],
            "detail": f"${sizes['10000']['cost_usd']}",
        }


def _judge_observed(results: dict[str, Any], goals: dict[str, dict[str, Any]]) -> None:
    """IAM as observed, the cap per account: a daily run of 10,000 accounts and its cost."""
    largest = _largest(results, "observed-account")
    if largest is None:
        return
    size, summary = largest
    scaled = "measured" if int(size) == SWEEP_ACCOUNTS else f"estimated from {int(size):,} accounts"
    days = summary["days"]
    after = [d for d in days if summary["backlog_gone_day"] and d["day"] >= summary["backlog_gone_day"]]
    oldest = max((d["oldest_age_days"] or 0 for d in after), default=None)
    daily = all(d["root_and_ous_collected"] for d in days if d["status"] == "SUCCEEDED")
    hours = summary["iam_hours_daily_10000"]
    goals["a 10,000-account daily run <= 12 h of IAM time, root and every OU daily, no account older than 7 d"] = {
        "met": bool(summary["steady_state"])
        and hours <= GOALS["daily_iam_hours_10000"]
        and daily
        and oldest is not None
        and oldest <= GOALS["oldest_age_days"],
        "detail": f"{hours} h ({scaled}, {'steady state' if summary['steady_state'] else 'no steady state'}); "
        f"root and OUs every day: {'yes' if daily else 'no'}; oldest data once the backlog was gone: "
        f"{'never gone' if oldest is None else f'{oldest} d'}",
    }
    by_service = summary["steady_cost_by_service_usd_10000"]
    money = ", ".join(f"{k} ${v}" for k, v in sorted(by_service.items(), key=lambda kv: -kv[1]) if k != "total")
    goals["steady-state daily cost of 10,000 accounts <= $0.30 (observed, per account)"] = {
        "met": bool(summary["steady_state"]) and summary["steady_cost_usd_10000"] <= GOALS["steady_cost_usd_10000"],
        "detail": f"${summary['steady_cost_usd_10000']} ({scaled}): {money}",
    }
