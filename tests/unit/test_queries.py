"""The saved Athena queries (queries/*.sql), run on DuckDB over two synthetic snapshots.

Each query's result must equal a row-by-row Python computation on the same rows, in the same
order. The data sits around the 90-day edge (exactly 90 days is still "used"; 90 days and an hour
is not) and has reports narrowed to an SCP, so `coalesce(policy_id, '')` joins and ordering count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from harness.athena_sql import run_query, to_duckdb
from lambdas.collector.insight.unused import find_unused
from lambdas.collector.store.normalize import ColumnBuffer
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS, SCP_RECOMMENDATIONS
from tests.helpers import job_context

QUERIES = Path(__file__).resolve().parents[2] / "queries"
DAYS = timedelta(days=90)
ORG = "o-a1b2c3d4e5"
ROOT = f"{ORG}/r-ab12"
OU_A = f"{ROOT}/ou-ab12-aaaaaaaa"
OU_B = f"{OU_A}/ou-ab12-bbbbbbbb"
ACCOUNT_1 = f"{OU_A}/111122223333"
ACCOUNT_2 = f"{OU_B}/444455556666"
POLICY = "p-examplepolicy"
TARGETS = [(ROOT, None), (OU_A, None), (OU_A, POLICY), (OU_B, None), (ACCOUNT_1, None), (ACCOUNT_1, POLICY)]
TARGETS_NEW_IN_LATEST = [(ACCOUNT_2, None)]
SERVICES = ["athena", "ec2", "glue", "iam", "kms", "lambda", "s3", "sqs", "sts"]
NEWLY_ALLOWED = "iam"  # absent from the previous snapshot, so never "newly unused" though it aged out
# Age of the last use at the latest snapshot, around the 90-day edge (None: not used in 400 days).
AGES = [None, timedelta(hours=3), timedelta(days=30), DAYS, DAYS + timedelta(hours=1), DAYS + timedelta(days=1)]
AGES += [DAYS + timedelta(hours=23), timedelta(days=300), DAYS - timedelta(hours=1)]


@dataclass(frozen=True)
class Snapshot:
    dt: str
    collected_at: datetime


PREVIOUS = Snapshot("2025-03-01", datetime(2025, 3, 1, 6, 0, tzinfo=UTC))
LATEST = Snapshot("2025-03-02", datetime(2025, 3, 2, 6, 0, tzinfo=UTC))
Row = dict[str, Any]


def last_use(path: str, namespace: str, snapshot: Snapshot) -> tuple[datetime | None, str | None]:
    """When and where `path` last used `namespace` as of `snapshot`; the same for every report on `path`."""
    i, j = [p for p, _ in TARGETS + TARGETS_NEW_IN_LATEST].index(path), SERVICES.index(namespace)
    age = AGES[(3 * i + j) % len(AGES)]
    if age is None:
        return None, None
    when, region = LATEST.collected_at - age, ("us-east-1", "eu-west-1")[(i + j) % 2]
    if when > snapshot.collected_at:  # used after that snapshot: it saw an older use, or none
        return (None, None) if (i + j) % 2 else (snapshot.collected_at - timedelta(days=10), "eu-central-1")
    return when, region


# An account the plan did not collect on either day: its report of four days before PREVIOUS is carried
# into both snapshots, with that report's own collected_at. s3 was used 88 days before that report: used
# as the report saw it, though 93 days before LATEST; a query judging by the row's own collected_at says so.
CARRIED = f"{OU_A}/999900001111"
CARRIED_AT = PREVIOUS.collected_at - timedelta(days=4)
CARRIED_S3_USE = CARRIED_AT - timedelta(days=88)
CARRIED_USES = {"s3": CARRIED_S3_USE, "ec2": None}
DEFERRED = f"{OU_B}/555566667777"  # planned for a later run, never collected: no rows, a DEFERRED record


def carried_rows(snapshot: Snapshot) -> pa.Table:
    buffer = ColumnBuffer(ACCESS_DETAILS)
    details = [
        {"ServiceName": f"Service {ns}", "ServiceNamespace": ns, "LastAuthenticatedTime": when}
        for ns, when in CARRIED_USES.items()
    ]
    buffer.add_access_details(job_context(CARRIED, collected_at=CARRIED_AT, run_id="run-0"), details)
    table = buffer.to_table()
    age = (snapshot.collected_at.date() - CARRIED_AT.date()).days
    for name, value, kind in (("carried_forward", True, pa.bool_()), ("data_age_days", age, pa.int32())):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.schema.field(index), pa.array([value] * table.num_rows, kind))
    return table


def services_of(policy: str | None) -> list[str]:
    return SERVICES if policy is None else SERVICES[::2]  # an SCP allows fewer services


def access_details_of(snapshot: Snapshot) -> pa.Table:
    targets = TARGETS + (TARGETS_NEW_IN_LATEST if snapshot is LATEST else [])
    buffer = ColumnBuffer(ACCESS_DETAILS)
    for path, policy in targets:
        details = []
        for namespace in services_of(policy):
            if namespace == NEWLY_ALLOWED and snapshot is PREVIOUS:
                continue
            when, region = last_use(path, namespace, snapshot)
            if policy is not None and when is not None:
                # Jobs of one run start minutes apart and IAM lags hours: another report can see an older use.
                when, region = when - timedelta(hours=2), "ap-southeast-2" if namespace < "m" else "us-west-2"
            detail: dict[str, Any] = {"ServiceName": f"Service {namespace}", "ServiceNamespace": namespace}
            detail |= {"LastAuthenticatedTime": when, "Region": region, "EntityPath": when and ACCOUNT_1}
            details.append(detail)
        buffer.add_access_details(job_context(path, collected_at=snapshot.collected_at, policy=policy), details)
    return with_dt(pa.concat_tables([buffer.to_table(), carried_rows(snapshot)]), snapshot)


JOB_OUTCOMES = {  # (path, policy, snapshot) -> (status, error code); everything else COMPLETED
    (ROOT, None, PREVIOUS.dt): ("FAILED", "AccessDenied"),  # an older day: not in the latest failures
    (OU_B, None, LATEST.dt): ("FAILED", "InvalidInput"),
    (ACCOUNT_1, POLICY, LATEST.dt): ("TIMED_OUT", None),
    (f"{OU_B}/777788889999", None, LATEST.dt): ("NOT_COLLECTED", None),
    (OU_A, POLICY, LATEST.dt): ("INCOMPLETE", "RowsMissing"),
}


def report_jobs_of(snapshot: Snapshot) -> pa.Table:
    keys = [*TARGETS, *TARGETS_NEW_IN_LATEST, (f"{OU_B}/777788889999", None)]
    buffer = ColumnBuffer(REPORT_JOBS)
    for path, policy in keys:
        status, code = JOB_OUTCOMES.get((path, policy, snapshot.dt), ("COMPLETED", None))
        if status == "NOT_COLLECTED" and snapshot is PREVIOUS:
            continue
        context = job_context(path, collected_at=snapshot.collected_at, policy=policy).columns()
        outcome = {"job_status": status, "error_code": code, "error_message": code and f"{code} on {path}"}
        buffer.add_row({**context, **outcome, "rows_written": 0, "pages": 1, "iam_calls": 2})
    context = job_context(CARRIED, collected_at=CARRIED_AT, run_id="run-0").columns()
    buffer.add_row({**context, "job_status": "COMPLETED", "error_code": None, "error_message": None} | CARRIED_JOB)
    if snapshot is LATEST:
        context = job_context(DEFERRED, collected_at=snapshot.collected_at).columns()
        buffer.add_row({**context, "job_status": "DEFERRED", "error_code": None, "error_message": None} | NO_JOB)
    return with_dt(buffer.to_table(), snapshot)


CARRIED_JOB = {"rows_written": 2, "pages": 1, "iam_calls": 2, "carried_forward": True, "plan": "NOT_DUE"}
NO_JOB = {"rows_written": 0, "pages": 0, "iam_calls": 0, "plan": "OVER_BUDGET"}


def with_dt(table: pa.Table, snapshot: Snapshot) -> pa.Table:
    """The Hive partition column Athena adds from the key (`dt=…/`), as Glue declares it: a string."""
    return table.append_column("dt", pa.array([snapshot.dt] * table.num_rows, pa.string()))


ACCESS_DETAILS_TABLE = pa.concat_tables([access_details_of(PREVIOUS), access_details_of(LATEST)])
REPORT_JOBS_TABLE = pa.concat_tables([report_jobs_of(PREVIOUS), report_jobs_of(LATEST)])


def recommendation_rows(snapshot: Snapshot) -> list[Row]:
    """A day's `scp_recommendations`: proposals over two SCPs (new, unchanged, withdrawn, done), a held
    proposal, a scope without evidence and one with nothing to deny."""

    def row(path: str, status: str, namespace: str | None = None, **values: Any) -> Row:
        kind = "ROOT" if path == ROOT else "ACCOUNT" if path[-1].isdigit() else "ORGANIZATIONAL_UNIT"
        base: Row = dict.fromkeys(SCP_RECOMMENDATIONS.column_names)
        return (
            base
            | {
                "run_id": f"run-{snapshot.dt}",
                "collected_at": snapshot.collected_at,
                "organization_id": ORG,
                "target_path": path,
                "target_type": kind,
                "target_id": path.rsplit("/", 1)[-1],
                "target_name": f"name of {path.rsplit('/', 1)[-1]}",
                "status": status,
                "window_days": 180 if kind == "ROOT" else 90,
                "service_namespace": namespace,
                "service_name": namespace and namespace.upper(),
                "accounts_in_scope": 2,
            }
            | values
        )

    if snapshot is PREVIOUS:
        return [row(ROOT, "PROPOSED", ns, change="NEW", policy_name="p-1", policy_chars=900) for ns in SERVICES[:4]]
    proposed = [
        row(ROOT, "PROPOSED", ns, change=change, policy_name=policy, policy_chars=chars)
        for ns, change, policy, chars in [
            ("athena", "UNCHANGED", "p-1", 5_000),
            ("ec2", "UNCHANGED", "p-1", 5_000),
            ("kms", "NEW", "p-2", 120),
        ]
    ]
    return [
        *proposed,
        row(ROOT, "PROPOSED", "glue", change="WITHDRAWN", reason="used again: last used 2025-03-01"),
        row(ROOT, "PROPOSED", "iam", change="DONE", reason="denied now"),
        row(OU_A, "HELD", "s3", change="UNCHANGED", policy_name="p-3", policy_chars=80, reason="job failed today"),
        row(OU_B, "NO_EVIDENCE", reason="every account in scope joined within the window"),
        row(ACCOUNT_1, "NOTHING_TO_DENY"),
    ]


SCP_RECOMMENDATIONS_TABLE = pa.concat_tables(
    with_dt(pa.Table.from_pylist(recommendation_rows(s), schema=SCP_RECOMMENDATIONS.arrow_schema), s)
    for s in (PREVIOUS, LATEST)
)
TABLES = {
    "access_details": ACCESS_DETAILS_TABLE,
    "report_jobs": REPORT_JOBS_TABLE,
    "scp_recommendations": SCP_RECOMMENDATIONS_TABLE,
}
ROWS: list[Row] = ACCESS_DETAILS_TABLE.to_pylist()
JOBS: list[Row] = REPORT_JOBS_TABLE.to_pylist()


def run(name: str) -> list[Row]:
    result: list[Row] = run_query((QUERIES / f"{name}.sql").read_text(encoding="utf-8"), TABLES).to_pylist()
    return result


def is_unused(row: Row) -> bool:
    when = row["last_authenticated_time"]
    return when is None or when < row["collected_at"] - DAYS


def target_order(row: Row) -> tuple[str, str, str]:
    return row["target_path"], row["policy_id"] or "", row["service_namespace"]


def pick(row: Row, *names: str) -> Row:
    return {name: row[name] for name in names}


TARGET = ("target_path", "target_type", "target_id", "target_name", "policy_id")
SERVICE = ("service_namespace", "service_name", "last_authenticated_time")
LATEST_ROWS = [row for row in ROWS if row["dt"] == LATEST.dt]


def expected_unused_services_latest() -> list[Row]:
    unused = sorted((row for row in LATEST_ROWS if is_unused(row)), key=target_order)
    return [pick(row, *TARGET, *SERVICE, "dt") for row in unused]


def expected_unused_for_days_by_ou() -> list[Row]:
    unused = sorted(
        (r for r in LATEST_ROWS if r["target_type"] == "ORGANIZATIONAL_UNIT" and is_unused(r)), key=target_order
    )
    count = {
        key: sum(1 for row in unused if target_order(row)[:2] == key) for key in {target_order(r)[:2] for r in unused}
    }
    return [
        pick(row, "target_path", "target_id", "target_name", "policy_id")
        | {"unused_in_ou": count[target_order(row)[:2]]}
        | pick(row, *SERVICE, "dt")
        for row in unused
    ]


def expected_newly_unused() -> list[Row]:
    before = {target_order(row): row for row in ROWS if row["dt"] == PREVIOUS.dt and not is_unused(row)}
    newly = sorted((row for row in LATEST_ROWS if is_unused(row) and target_order(row) in before), key=target_order)
    return [
        pick(row, *TARGET, *SERVICE)
        | {"previous_last_authenticated_time": before[target_order(row)]["last_authenticated_time"]}
        for row in newly
    ]


def expected_last_access_by_account() -> list[Row]:
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in LATEST_ROWS:
        if row["target_type"] == "ACCOUNT":
            groups.setdefault((row["target_id"], row["service_namespace"]), []).append(row)
    result = []
    for (account, namespace), rows in sorted(groups.items()):
        used = [row for row in rows if row["last_authenticated_time"] is not None]
        latest = max(used, key=lambda row: row["last_authenticated_time"]) if used else None
        result.append(
            {
                "account_id": account,
                "account_name": max(row["target_name"] for row in rows),
                "service_namespace": namespace,
                "service_name": max(row["service_name"] for row in rows),
                "last_authenticated_time": latest and latest["last_authenticated_time"],
                "last_authenticated_region": latest and latest["last_authenticated_region"],
                "reports": len(rows),
            }
        )
    return result


def expected_failed_jobs() -> list[Row]:
    latest_day = max(job["dt"] for job in JOBS)
    settled = ("COMPLETED", "DEFERRED")  # a deferred target did not fail: the plan left it to a later run
    failed = [job for job in JOBS if job["dt"] == latest_day and job["job_status"] not in settled]
    failed.sort(key=lambda job: (job["target_path"], job["policy_id"] or ""))
    columns = (*TARGET, "job_id", "job_status", "error_code", "error_message", "dt")
    return [pick(job, *columns) for job in failed]


def expected_guardrail_proposals() -> list[Row]:
    latest = [r for r in SCP_RECOMMENDATIONS_TABLE.to_pylist() if r["dt"] == LATEST.dt]
    keys = ("target_path", "target_type", "target_id", "target_name", "status", "window_days", "accounts_in_scope")
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for r in latest:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, rows in groups.items():
        reasons = [r["reason"] for r in rows if r["change"] in (None, "NEW", "UNCHANGED") and r["reason"]]
        chars = [r["policy_chars"] for r in rows if r["policy_chars"] is not None]
        out.append(
            dict(zip(keys, key, strict=True))
            | {
                "scps": len({r["policy_name"] for r in rows if r["policy_name"]}),
                "largest_scp_chars": max(chars) if chars else None,
                "services_proposed": sum(r["change"] in ("NEW", "UNCHANGED") for r in rows),
                "newly_proposed": sum(r["change"] == "NEW" for r in rows),
                "withdrawn": sum(r["change"] == "WITHDRAWN" for r in rows),
                "done": sum(r["change"] == "DONE" for r in rows),
                "reason": max(reasons) if reasons else None,
            }
        )
    return sorted(out, key=lambda r: (-r["services_proposed"], r["target_path"]))


EXPECTED: dict[str, Callable[[], list[Row]]] = {
    "guardrail_proposals": expected_guardrail_proposals,
    "unused_services_latest": expected_unused_services_latest,
    "unused_for_days_by_ou": expected_unused_for_days_by_ou,
    "newly_unused": expected_newly_unused,
    "last_access_by_account": expected_last_access_by_account,
    "failed_jobs": expected_failed_jobs,
}


def test_every_saved_query_has_a_reference_computation() -> None:
    assert sorted(path.stem for path in QUERIES.glob("*.sql")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_query_transpiled_to_duckdb_returns_what_python_computes(name: str) -> None:
    # Given two snapshots straddling the 90-day edge, When the saved query runs, Then rows and order match
    expected = EXPECTED[name]()

    result = run(name)

    assert expected, f"{name}: the synthetic data must give the query something to find"
    assert result == expected


def age(row: Row) -> timedelta | None:
    when = row["last_authenticated_time"]
    return None if when is None else row["collected_at"] - when


def test_the_synthetic_data_covers_the_edges_the_queries_care_about() -> None:
    newly = expected_newly_unused()
    assert (OU_A, POLICY) in {(row["target_path"], row["policy_id"]) for row in newly}, "policy_id join"
    # Aged out since the previous day, but that snapshot did not list it: not newly unused.
    aged_out = [
        r
        for r in LATEST_ROWS
        if r["service_namespace"] == NEWLY_ALLOWED and DAYS < (age(r) or DAYS) <= DAYS + timedelta(days=1)
    ]
    assert aged_out
    assert NEWLY_ALLOWED not in {row["service_namespace"] for row in newly}
    assert {DAYS, DAYS + timedelta(hours=1)} <= {age(row) for row in LATEST_ROWS}  # used at 90 days; unused after
    assert {row["policy_id"] for row in expected_unused_for_days_by_ou()} == {None, POLICY}
    # A carried row is judged as of its own report: s3 is 93 days old by LATEST but was used as its report saw it
    carried = {(r["service_namespace"], r["carried_forward"]) for r in LATEST_ROWS if r["target_path"] == CARRIED}
    assert carried == {("s3", True), ("ec2", True)}
    unused = {(r["target_path"], r["service_namespace"]) for r in expected_unused_services_latest()}
    assert (CARRIED, "ec2") in unused
    assert (CARRIED, "s3") not in unused
    assert LATEST.collected_at - CARRIED_S3_USE > DAYS  # judged by the day, it would be unused
    assert "DEFERRED" in {job["job_status"] for job in JOBS}


def test_the_unused_and_newly_unused_queries_agree_with_the_alert() -> None:
    # Given the alert's own computation on the same snapshots (Arrow, not SQL)
    latest = ACCESS_DETAILS_TABLE.filter(pc.equal(ACCESS_DETAILS_TABLE["dt"], LATEST.dt))
    previous = ACCESS_DETAILS_TABLE.filter(pc.equal(ACCESS_DETAILS_TABLE["dt"], PREVIOUS.dt))
    findings = find_unused(latest, previous, report_jobs_of(LATEST), as_of=LATEST.collected_at, unused_after_days=90)

    # When the saved queries run, Then they find the same services per target
    unused = {(row["target_path"], row["policy_id"], row["service_namespace"]) for row in run("unused_services_latest")}
    newly = {(row["target_path"], row["policy_id"], row["service_namespace"]) for row in run("newly_unused")}
    assert unused == {(t.target_path, t.policy_id, s.namespace) for t in findings.targets for s in t.unused}
    assert newly == {(t.target_path, t.policy_id, ns) for t in findings.targets for ns in t.newly_unused}


def test_integer_division_truncates_as_in_athena() -> None:
    assert run_query("SELECT 7 / 2 AS q, -7 / 2 AS r", {}).to_pylist() == [{"q": 3, "r": -3}]


def test_only_one_statement_is_accepted() -> None:
    with pytest.raises(ValueError, match="one SQL statement, got 2"):
        to_duckdb("SELECT 1; SELECT 2")
