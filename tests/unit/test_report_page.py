"""The report page's numbers and HTML: buckets at their edges, column order, tree order, changes, problem
groups, the trend, the summary counts, and a page that escapes what it shows."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pyarrow as pa

from lambdas.collector.models import Polling, RunContext, TargetType
from lambdas.collector.organization import Node, OrganizationSnapshot
from lambdas.collector.report.daily import assemble
from lambdas.collector.report.heat import BUCKETS, buckets, columns_of, days_since, grid
from lambdas.collector.report.page import render
from lambdas.collector.report.view import DETAIL_COLUMNS, changes, problems, summary_rows, tree_rows, trend
from lambdas.collector.store.schema import ACCESS_DETAILS

AT = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
ORG = "o-abcdefghij"
ROOT = Node(id="r-ab12", type=TargetType.ROOT, name="Root", path=f"{ORG}/r-ab12")
PROD = Node(
    id="ou-ab12-prod0001", type=TargetType.ORGANIZATIONAL_UNIT, name="Prod", path=f"{ROOT.path}/ou-ab12-prod0001"
)
APPS = Node(
    id="ou-ab12-apps0001", type=TargetType.ORGANIZATIONAL_UNIT, name="apps", path=f"{PROD.path}/ou-ab12-apps0001"
)
DEV = Node(
    id="ou-ab12-dev00001", type=TargetType.ORGANIZATIONAL_UNIT, name="Dev <x>", path=f"{ROOT.path}/ou-ab12-dev00001"
)
ACCOUNT = Node(id="111122223333", type=TargetType.ACCOUNT, name="prod-1", path=f"{APPS.path}/111122223333")
NODES = (DEV, ACCOUNT, APPS, ROOT, PROD)  # any order: the page sorts them


def details(rows: list[tuple[Node, str, int | None]], at: datetime = AT) -> pa.Table:
    """access_details rows: (target, namespace, days since last use or None)."""
    schema = ACCESS_DETAILS.arrow_schema
    columns: dict[str, list[object]] = {name: [] for name in DETAIL_COLUMNS}
    for node, namespace, days in rows:
        columns["target_id"].append(node.id)
        columns["target_type"].append(node.type.value)
        columns["service_namespace"].append(namespace)
        columns["service_name"].append(namespace.upper())
        columns["last_authenticated_time"].append(None if days is None else at - timedelta(days=days, hours=1))
        columns["collected_at"].append(at)
    return pa.table({name: pa.array(values, schema.field(name).type) for name, values in columns.items()})


def test_days_fall_in_the_legends_buckets_at_their_edges() -> None:
    days = pa.array([0, 30, 31, 90, 91, 365, 366, None], pa.int32())
    assert buckets(days).to_pylist() == ["4", "4", "3", "3", "2", "2", "1", "0"]
    assert len(BUCKETS) == 5


def test_days_since_are_whole_days_to_the_reports_own_time() -> None:
    assert days_since(details([(ROOT, "ec2", 3), (ROOT, "s3", None)])).to_pylist() == [3, None]


def test_columns_are_the_services_used_somewhere_most_used_first_and_the_never_used_are_counted() -> None:
    table = details(
        [(PROD, "s3", 1), (DEV, "s3", 400 - 1), (PROD, "ec2", 5), (DEV, "ec2", 10), (ROOT, "kms", 200),
         (PROD, "a4b", None), (DEV, "gamelift", None)]
    )  # fmt: skip
    columns = columns_of(table, window_days=90)
    assert columns.used == ("ec2", "s3", "kms")  # two recent users, one recent + one old, one old
    assert columns.never_anywhere == 2


def test_a_grid_marks_what_is_not_allowed_and_counts_the_never_used_per_row() -> None:
    table = details([(PROD, "ec2", 5), (PROD, "a4b", None), (DEV, "ec2", 100), (DEV, "s3", 40)])
    rows, _ = tree_rows(NODES, {PROD.id, DEV.id})
    heat = grid(table, rows, columns_of(table, 90), with_days=True)
    assert heat.columns == ("ec2", "s3")
    by_id = dict(
        zip((r.id for r in heat.rows), zip(heat.cells, heat.days, heat.never_counts, strict=True), strict=True)
    )
    assert by_id[PROD.id] == ("4-", (5, None), 1)
    assert by_id[DEV.id] == ("23", (100, 40), 0)


def test_rows_follow_the_tree_parents_first_siblings_by_name_accounts_under_their_ou() -> None:
    groups, accounts = tree_rows(NODES, {n.id for n in NODES})
    assert [(r.label, r.depth) for r in groups] == [("Root", 0), ("Dev <x>", 1), ("Prod", 1), ("apps", 2)]
    assert [(r.id, r.parent) for r in accounts] == [(ACCOUNT.id, APPS.id)]


def test_changes_are_services_gone_quiet_and_come_into_use_since_the_previous_snapshot() -> None:
    before = details([(PROD, "ec2", 5), (PROD, "s3", 200), (PROD, "kms", 10)], at=AT - timedelta(days=1))
    now = details([(PROD, "ec2", 120), (PROD, "s3", 1), (PROD, "kms", 11)])
    (change,) = changes(now, before, {PROD.id: "Prod"}, 90)
    assert (change.label, change.newly_unused, change.newly_used) == ("Prod", ("ec2",), ("s3",))
    assert changes(now, None, {}, 90) == []


def test_problem_jobs_are_grouped_by_error_with_the_fix() -> None:
    jobs = pa.Table.from_pylist(
        [
            {"run_id": "r1", "target_id": f"{n:012d}", "target_name": f"acct-{n}", "job_status": "FAILED",
             "error_code": "ORGANIZATIONS_REPORT_ACCESS_DENIED"}
            for n in range(3)
        ]
        + [{"run_id": "r1", "target_id": PROD.id, "target_name": "Prod", "job_status": "TIMED_OUT",
            "error_code": "TimedOut"},
           {"run_id": "r0", "target_id": DEV.id, "target_name": "Dev", "job_status": "FAILED", "error_code": "Old"},
           {"run_id": "r1", "target_id": APPS.id, "target_name": "apps", "job_status": "DEFERRED", "error_code": None}]
    )  # fmt: skip
    groups = problems(jobs, "r1", "arn:aws:iam::111122223333:role/Reader")
    assert [(g.code, g.count) for g in groups] == [("ORGANIZATIONS_REPORT_ACCESS_DENIED", 3), ("TimedOut", 1)]
    assert groups[0].fix is not None
    assert "arn:aws:iam::111122223333:role/Reader" in groups[0].fix
    assert groups[0].examples == ("acct-0", "acct-1", "acct-2")


def test_the_trend_has_the_root_first_then_the_top_level_ous_with_most_unused() -> None:
    history = [
        {"target_id": t, "services_unused": u, "dt": d}
        for t, u, d in [(PROD.id, 5, "2026-12-01"), (PROD.id, 9, "2026-12-02"), (DEV.id, 7, "2026-12-02"),
                        (ROOT.id, 20, "2026-12-02"), (APPS.id, 99, "2026-12-02")]
    ]  # fmt: skip
    series = trend(history, {ROOT.id: "Root", PROD.id: "Prod", DEV.id: "Dev"}, [ROOT.id, PROD.id, DEV.id])
    assert [s.label for s in series] == ["Root", "Prod", "Dev"]
    assert series[1].points == ((date(2026, 12, 1), 5), (date(2026, 12, 2), 9))


def test_the_days_summary_counts_allowed_used_unused_and_never_used() -> None:
    table = details([(PROD, "ec2", 5), (PROD, "s3", 200), (PROD, "a4b", None), (DEV, "ec2", 1)])
    rows, _ = tree_rows(NODES, {PROD.id})
    (summary,) = summary_rows(table, rows, 90)
    assert summary == {
        "target_id": PROD.id,
        "services_allowed": 3,
        "services_used": 1,
        "services_unused": 2,
        "services_never_used": 1,
    }


class _Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.accounts: list[str] = []
        self.scripts: list[str] = []
        self.external: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if tag == "div" and "hm-row" in classes:
            (self.accounts if "ACCOUNT" in classes else self.rows).append(values.get("data-id") or "")
        if tag in ("script", "link", "img") and (values.get("src") or values.get("href")):
            self.external.append(tag)
        self._in_script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def run_context() -> RunContext:
    return RunContext(
        run_id="run-1",
        dt="2026-12-03",
        collected_at=AT,
        organization_id=ORG,
        bucket="data-bucket",
        manifest_key="runs/run-1/manifest.json",
        targets=5,
        batches=1,
        polling=Polling(initial_wait_seconds=1, max_wait_seconds=1, max_attempts=1, inline_wait_seconds=0),
    )


def test_the_page_is_self_contained_has_a_row_per_root_and_ou_and_escapes_names() -> None:
    hostile = Node(
        id="ou-ab12-evil0001",
        type=TargetType.ORGANIZATIONAL_UNIT,
        name="</script><script>alert(1)</script>",
        path=f"{ROOT.path}/ou-ab12-evil0001",
    )
    nodes = (*NODES, hostile)
    org = OrganizationSnapshot(organization_id=ORG, management_account_id="999999999999", read_at=AT, nodes=nodes)
    table = details([(n, "ec2", 3) for n in nodes] + [(n, "a4b", None) for n in nodes])
    jobs = pa.Table.from_pylist(
        [{"run_id": "run-1", "target_id": n.id, "target_type": n.type.value, "target_name": n.name,
          "target_path": n.path, "job_status": "COMPLETED", "error_code": None, "carried_forward": False,
          "data_age_days": 0, "policy_id": None} for n in nodes]
    )  # fmt: skip
    view, summary = assemble(run_context(), org, table, jobs, window=90)
    page = render(view)
    parsed = _Parsed()
    parsed.feed(page)
    assert parsed.rows == [ROOT.id, hostile.id, DEV.id, PROD.id, APPS.id]  # tree order, siblings by name
    assert parsed.accounts == [ACCOUNT.id]  # in the accounts view
    assert parsed.external == []
    assert "<script>alert(1)" not in page
    data = re.search(r'<script type="application/json" id="heat-ous-data">(.*?)</script>', page, re.S)
    assert data is not None
    assert json.loads(data.group(1))["rows"][1]["label"] == hostile.name  # intact once parsed back
    assert 'id="legend"' in page
    assert all(label in page for label in BUCKETS)
    assert summary.num_rows == 5  # the root and the four OUs
