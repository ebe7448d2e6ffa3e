"""Two days through the deployed definition: the first run collects every target; the next day's run
collects root and OUs, carries the accounts forward, and its partition holds every target exactly once.

moto's interpreter gives an execution its wall-clock StartTime (the run's `dt`), and its Wait states really
sleep, so two calendar days cannot pass between executions. The first day's snapshot is therefore moved back
one day after its run (keys to the earlier `dt`, its times one day earlier), as if it had run yesterday; the
second execution then plans from it as a daily run would. Longer sequences are covered in
`tests/integration/test_collection_plan.py` on the emulator's clock.
"""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from harness.clients import client
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.names import Layout
from lambdas.collector.store.schema import DATASETS
from lambdas.collector.store.storage import get_table, list_keys, put_table
from tests.e2e.conftest import Collector
from tests.helpers import organization_targets

TIMES = ("collected_at", "job_creation_date", "job_completion_date")


def move_back_one_day(collector: Collector, dt: str) -> str:
    """The day's snapshot as if its run had started one day earlier; returns that day."""
    s3, deployment = client("s3"), collector.deployment
    layout, earlier = Layout(deployment.data_prefix), (date.fromisoformat(dt) - timedelta(days=1)).isoformat()
    for dataset in DATASETS:
        for key in list_keys(s3, deployment.bucket, layout.partition(dataset, dt)):
            table = get_table(s3, deployment.bucket, key, dataset)
            for name in TIMES:
                index = table.schema.get_field_index(name)
                moved = pc.subtract(table[name], pa.scalar(timedelta(days=1), pa.duration("us")))
                table = table.set_column(index, table.schema.field(index), moved)
            target = key.replace(layout.partition(dataset, dt), layout.partition(dataset, earlier))
            put_table(s3, deployment.bucket, target, table)
            s3.delete_object(Bucket=deployment.bucket, Key=key)
    return earlier


def test_the_next_days_run_collects_root_and_ous_and_carries_the_accounts_once_each(
    collector: Collector, demo_org: OrganizationSpec
) -> None:
    targets = organization_targets(demo_org)
    # Day 1: every target collected
    first = collector.run()
    assert first.status == "SUCCEEDED", first.cause
    assert first.run["targets"] == targets
    yesterday = move_back_one_day(collector, first.run["dt"])
    # Day 2: root and OUs collected, accounts (one day old, cadence 7) carried forward
    second = collector.run()
    assert second.status == "SUCCEEDED", second.cause
    assert second.run["targets"] == 1 + len(demo_org.ous)
    tables = collector.tables()
    today = second.run["dt"]
    jobs = [j for j in tables["report_jobs"].to_pylist() if j["dt"] == today]
    details = tables["access_details"].filter(pc.equal(tables["access_details"]["dt"], today))
    # Every target exactly once, and each one's rows from its one completed report
    assert len(jobs) == len({(j["target_path"], j["policy_id"]) for j in jobs}) == targets
    assert {j["job_status"] for j in jobs} == {"COMPLETED"}
    for job in jobs:
        rows = details.filter(pc.equal(details["job_id"], job["job_id"]))
        assert rows.num_rows == job["services_accessible"]
        carried = job["target_type"] == "ACCOUNT"
        assert job["carried_forward"] is carried
        assert (job["data_age_days"], job["plan"]) == ((1, "NOT_DUE") if carried else (0, "ROOT_OR_OU"))
        assert set(rows["carried_forward"].to_pylist()) <= {carried}
        assert (job["collected_at"].date().isoformat() == yesterday) is carried
    # The alert compares with yesterday: a carried row is yesterday's row, never newly unused; nothing is stale
    alert = collector.alerts()[-1]
    assert "STALE DATA" not in alert["Message"]
    assert alert["MessageAttributes"]["newly_unused_services"]["Value"] == "0"
