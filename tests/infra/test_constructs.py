"""The storage, alerting and analytics constructs, each checked on its synthesized CloudFormation.

Two apps are synthesized once per module: one for the template assertions, and one with cdk-nag's
AwsSolutions checks plus a deliberately unhardened control bucket, which proves the checks ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from infra.alerting import Alerting
from infra.analytics import PARQUET_SERDE, QUERIES_DIR, Analytics, load_queries
from infra.config import ConfigError, load_config
from infra.nag import PACK
from infra.storage import Storage
from lambdas.collector.names import Layout
from lambdas.collector.store.schema import DATASETS, Dataset
from tests.infra.synth import logical_id, nag_findings, new_app, properties, render, resource

PREFIX = "org-access/"
EMAILS = ["ops@example.com", "security@example.com"]
CUTOFF = 1_000_000_000
DATABASE = "org_access_report"
STACK = "Constructs"


@dataclass(frozen=True)
class Built:
    stack: cdk.Stack
    storage: Storage
    alerting: Alerting
    analytics: Analytics


def compose(app: cdk.App) -> Built:
    stack = cdk.Stack(app, STACK)
    storage = Storage(stack, "Storage", data_prefix=PREFIX, scratch_days=7, retention_days=400)
    alerting = Alerting(stack, "Alerting", emails=EMAILS)
    analytics = Analytics(
        stack,
        "Analytics",
        data_bucket=storage.data_bucket,
        data_prefix=PREFIX,
        results_bucket=storage.results_bucket,
        bytes_scanned_cutoff=CUTOFF,
        database_name=DATABASE,
    )
    return Built(stack, storage, alerting, analytics)


@pytest.fixture(scope="module")
def built() -> Built:
    return compose(new_app())


@pytest.fixture(scope="module")
def template(built: Built) -> Template:
    return Template.from_stack(built.stack)


@pytest.fixture(scope="module")
def nag_violations(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = new_app(outdir)
    compose(app)
    s3.Bucket(cdk.Stack(app, "Control"), "Unhardened")  # must be reported, or the checks did not run
    return nag_findings(app, outdir)


def bucket_policy(template: Template, bucket_id: str) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": bucket_id}}})
    assert len(policies) == 1, f"one bucket policy for {bucket_id}"
    statements: list[dict[str, Any]] = next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]
    return statements


# --- Storage -----------------------------------------------------------------------------------------


def test_the_data_bucket_is_encrypted_versioned_private_and_retained(built: Built, template: Template) -> None:
    bucket = resource(template, logical_id(built.storage.data_bucket))

    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")


@pytest.mark.parametrize("bucket", ["data_bucket", "results_bucket", "log_bucket"])
def test_every_bucket_denies_requests_without_tls(built: Built, template: Template, bucket: str) -> None:
    bucket_id = logical_id(getattr(built.storage, bucket))

    statements = bucket_policy(template, bucket_id)

    deny = [s for s in statements if s["Effect"] == "Deny" and "aws:SecureTransport" in s["Condition"].get("Bool", {})]
    assert len(deny) == 1
    assert deny[0]["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    assert (deny[0]["Action"], deny[0]["Principal"]) == ("s3:*", {"AWS": "*"})
    assert sorted(render(r) for r in deny[0]["Resource"]) == [f"<{bucket_id}.Arn>", f"<{bucket_id}.Arn>/*"]


def test_data_and_results_buckets_log_to_the_log_bucket_and_logs_and_results_expire(
    built: Built, template: Template
) -> None:
    log_id = logical_id(built.storage.log_bucket)
    log_bucket = properties(template, built.storage.log_bucket)
    delivery = [
        s for s in bucket_policy(template, log_id) if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
    ]

    for bucket, prefix in ((built.storage.data_bucket, "data/"), (built.storage.results_bucket, "athena-results/")):
        props = properties(template, bucket)
        assert props["LoggingConfiguration"] == {"DestinationBucketName": {"Ref": log_id}, "LogFilePrefix": prefix}
        sources = [
            s for s in delivery if render(s["Condition"]["ArnLike"]["aws:SourceArn"]) == f"<{logical_id(bucket)}.Arn>"
        ]
        assert [(s["Action"], render(s["Resource"])) for s in sources] == [
            ("s3:PutObject", f"<{log_id}.Arn>/{prefix}*")
        ]
    # Delivery by bucket policy, so the log bucket can disable ACLs.
    assert log_bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert log_bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert [r["ExpirationInDays"] for r in log_bucket["LifecycleConfiguration"]["Rules"]] == [365]
    results = properties(template, built.storage.results_bucket)["LifecycleConfiguration"]["Rules"]
    assert [r["ExpirationInDays"] for r in results] == [30]


def test_lifecycle_expires_scratch_old_versions_and_snapshots_past_retention(built: Built, template: Template) -> None:
    rules = {
        rule["Id"]: rule for rule in properties(template, built.storage.data_bucket)["LifecycleConfiguration"]["Rules"]
    }

    scratch = rules["expire-scratch"]
    assert (scratch["Prefix"], scratch["ExpirationInDays"]) == (f"{PREFIX}runs/", 7)
    assert Layout(PREFIX).manifest("run-1").startswith(scratch["Prefix"])  # the rule covers what the runs write
    assert not any(Layout(PREFIX).dataset(dataset).startswith(scratch["Prefix"]) for dataset in DATASETS)
    assert rules["expire-noncurrent"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert "Prefix" not in rules["expire-noncurrent"]
    for dataset in DATASETS:
        retention = rules[f"expire-{dataset.name}"]
        assert (retention["Prefix"], retention["ExpirationInDays"]) == (Layout(PREFIX).dataset(dataset), 400)
    # The day's recommendation files go with the snapshots
    json_files = rules["expire-recommendations"]
    assert (json_files["Prefix"], json_files["ExpirationInDays"]) == (Layout(PREFIX).recommendations, 400)
    assert Layout(PREFIX).recommendation("2026-12-03", "ou-ab12-prod0001").startswith(json_files["Prefix"])


@pytest.mark.parametrize("prefix", ["/org/", "org", "org//", "a b/"])
def test_storage_rejects_a_prefix_that_is_not_key_segments(prefix: str) -> None:
    with pytest.raises(ValueError, match="data_prefix"):
        Storage(cdk.Stack(new_app(), "S"), "Storage", data_prefix=prefix, scratch_days=7, retention_days=None)


# --- Alerting ----------------------------------------------------------------------------------------


def test_the_topic_key_rotates_and_admits_cloudwatch_and_eventbridge(built: Built, template: Template) -> None:
    key = properties(template, built.alerting.key)

    assert key["EnableKeyRotation"] is True
    services = [s for s in key["KeyPolicy"]["Statement"] if "Service" in s["Principal"]]
    assert len(services) == 1
    assert sorted(services[0]["Principal"]["Service"]) == ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    assert sorted(services[0]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert services[0]["Effect"] == "Allow"


def test_the_topic_is_encrypted_with_that_key_and_tls_only(built: Built, template: Template) -> None:
    topic_id, key_id = logical_id(built.alerting.topic), logical_id(built.alerting.key)

    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}})
    policies = template.find_resources("AWS::SNS::TopicPolicy", {"Properties": {"Topics": [{"Ref": topic_id}]}})
    (policy,) = policies.values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert [(s["Action"], s["Principal"], s["Condition"]) for s in deny] == [
        ("sns:Publish", "*", {"Bool": {"aws:SecureTransport": "false"}})
    ]
    allowed = {s["Principal"]["Service"]: s["Condition"] for s in statements if s["Effect"] == "Allow"}
    alarms = render(allowed["cloudwatch.amazonaws.com"]["ArnLike"]["aws:SourceArn"])
    assert alarms == "arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:*"
    assert allowed["events.amazonaws.com"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_every_address_is_subscribed_by_email(built: Built, template: Template) -> None:
    subscriptions = template.find_resources("AWS::SNS::Subscription")
    topic_id = logical_id(built.alerting.topic)
    assert sorted((s["Properties"]["Protocol"], s["Properties"]["Endpoint"]) for s in subscriptions.values()) == [
        ("email", address) for address in sorted(EMAILS)
    ]
    assert {json.dumps(s["Properties"]["TopicArn"]) for s in subscriptions.values()} == {json.dumps({"Ref": topic_id})}


def test_an_alert_email_that_is_not_an_address_is_refused_where_it_is_declared() -> None:
    with pytest.raises(ConfigError, match=r"alert_emails\.1: String should match pattern"):
        load_config({"alert_emails": ["security@example.com", "ops.example.com"]})


# --- Analytics ---------------------------------------------------------------------------------------


def table_input(built: Built, template: Template, dataset: Dataset) -> dict[str, Any]:
    table = properties(template, built.analytics.tables[dataset.name])
    assert table["DatabaseName"] == {"Ref": logical_id(built.analytics.database)}
    found: dict[str, Any] = table["TableInput"]
    return found


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda dataset: dataset.name)
def test_each_table_has_the_schema_modules_columns_as_parquet(
    built: Built, template: Template, dataset: Dataset
) -> None:
    table = table_input(built, template, dataset)

    storage = table["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == [(c.name, c.glue_type) for c in dataset.columns]
    assert [c["Comment"] for c in storage["Columns"]] == [c.comment for c in dataset.columns]
    assert [(c["Name"], c["Type"]) for c in table["PartitionKeys"]] == [(dataset.partition_key, "string")]
    assert (table["Name"], table["TableType"]) == (dataset.name, "EXTERNAL_TABLE")
    assert storage["SerdeInfo"] == {"SerializationLibrary": PARQUET_SERDE}
    assert storage["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert storage["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    data_bucket = logical_id(built.storage.data_bucket)
    assert render(storage["Location"]) == f"s3://<{data_bucket}>/{Layout(PREFIX).dataset(dataset)}"


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda dataset: dataset.name)
def test_each_table_projects_daily_partitions_onto_the_writers_keys(
    built: Built, template: Template, dataset: Dataset
) -> None:
    parameters = table_input(built, template, dataset)["Parameters"]

    data_bucket = logical_id(built.storage.data_bucket)
    assert {name: render(value) for name, value in parameters.items()} == {
        "classification": "parquet",
        "parquet.compression": "ZSTD",
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2024-01-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "storage.location.template": f"s3://<{data_bucket}>/{PREFIX}{dataset.name}/dt=${{dt}}/",
    }
    # The template, filled in, is where finalize writes the day's snapshot.
    filled = parameters["storage.location.template"]["Fn::Join"][1][-1].replace("${dt}", "2025-03-02")
    assert filled == "/" + Layout(PREFIX).partition(dataset, "2025-03-02")


def test_the_workgroup_enforces_encrypted_results_and_a_scan_limit(built: Built, template: Template) -> None:
    (workgroup,) = template.find_resources("AWS::Athena::WorkGroup").values()

    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert workgroup["Properties"]["Name"] == built.analytics.workgroup_name == DATABASE
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["PublishCloudWatchMetricsEnabled"] is True
    assert config["BytesScannedCutoffPerQuery"] == CUTOFF
    assert config["ResultConfiguration"]["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    results = logical_id(built.storage.results_bucket)
    assert render(config["ResultConfiguration"]["OutputLocation"]) == f"s3://<{results}>/{DATABASE}/"


def test_one_named_query_per_sql_file_with_the_files_text(built: Built, template: Template) -> None:
    files = {path.stem: path.read_text(encoding="utf-8") for path in QUERIES_DIR.glob("*.sql")}
    workgroup = {"Ref": logical_id(built.analytics.workgroup)}
    database = {"Ref": logical_id(built.analytics.database)}

    queries = {
        q["Properties"]["Name"]: q["Properties"] for q in template.find_resources("AWS::Athena::NamedQuery").values()
    }

    assert len(files) >= 5
    assert sorted(queries) == sorted(files)
    for name, query in queries.items():
        assert query["QueryString"] == files[name]
        assert query["Description"] == files[name].split("\n", 1)[0].removeprefix("-- ")
        assert (query["WorkGroup"], query["Database"]) == (workgroup, database)


def test_a_query_file_without_a_description_line_is_refused(tmp_path: Path) -> None:
    (tmp_path / "good.sql").write_text("-- Counts rows\nSELECT count(*) FROM access_details\n")
    (tmp_path / "bare.sql").write_text("SELECT 1\n")
    with pytest.raises(ValueError, match=r"bare\.sql: the first line must be"):
        load_queries(tmp_path)


@pytest.mark.parametrize(("name", "cutoff"), [("Org-Access", CUTOFF), (DATABASE, 1024)])
def test_analytics_refuses_an_invalid_name_or_a_cutoff_below_athenas_minimum(name: str, cutoff: int) -> None:
    stack = cdk.Stack(new_app(), "S")
    buckets = dict.fromkeys(["data_bucket", "results_bucket"], s3.Bucket(stack, "B"))
    with pytest.raises(ValueError, match=r"database_name|bytes_scanned_cutoff"):
        Analytics(stack, "A", **buckets, data_prefix="", bytes_scanned_cutoff=cutoff, database_name=name)


# --- cdk-nag -----------------------------------------------------------------------------------------


def test_cdk_nag_checks_ran_and_flag_an_unhardened_bucket(nag_violations: list[tuple[str, str]]) -> None:
    control = {rule for rule, path in nag_violations if path.startswith("Control/")}
    assert control >= {"AwsSolutions-S1", "AwsSolutions-S10"}


def test_the_constructs_have_no_unacknowledged_cdk_nag_findings(nag_violations: list[tuple[str, str]]) -> None:
    assert [(rule, path) for rule, path in nag_violations if path.startswith(f"{STACK}/")] == []


def test_the_constructs_need_no_cdk_nag_acknowledgements(built: Built) -> None:
    # cdk-nag's S1 accepts a bucket that is itself a server-access-log destination, so not even the
    # log bucket needs one; any acknowledgement added later must be looked at here. (The Control Tower
    # rules' acknowledgements are checked against their findings in test_stack.py.)
    acknowledged = {
        (construct.node.path, rule)
        for construct in built.stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule in entry.data
        if rule.startswith(f"{PACK}::")
    }
    assert acknowledged == set()
