"""Athena over the snapshots: a Glue database, one table per dataset, a workgroup and the saved queries.

The tables' columns come from `lambdas.collector.store.schema`, the module the Parquet writer uses, so
the two cannot drift. `dt` is found by partition projection (no crawler, no MSCK REPAIR): Athena
computes the partitions from the date range and the key template instead of listing them in Glue.

The saved queries are the files of `queries/` at the repository root, one named query per file,
its name the file's stem and its description the file's first line (`-- …`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge_guard
from infra.storage import RESULTS_DAYS, validate_prefix
from lambdas.collector.names import Layout
from lambdas.collector.store.schema import DATASETS, Dataset

QUERIES_DIR = Path(__file__).resolve().parent.parent / "queries"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
FIRST_DAY = "2024-01-01"  # projection's lower bound: before the collector existed, so no day is missed
MIN_CUTOFF = 10 * 1024 * 1024  # Athena's smallest BytesScannedCutoffPerQuery
_NAME = re.compile(r"[a-z0-9_]{1,128}")  # lower case: Glue folds names, Athena workgroups allow these too
_DESCRIPTION = "-- "


@dataclass(frozen=True)
class QueryFile:
    name: str
    description: str
    sql: str


def load_queries(directory: Path = QUERIES_DIR) -> list[QueryFile]:
    """Every `*.sql` of `directory`, by file name; each must open with a `-- description` line."""
    queries = []
    for path in sorted(directory.glob("*.sql")):
        sql = path.read_text(encoding="utf-8")
        first = sql.split("\n", 1)[0]
        description = first.removeprefix(_DESCRIPTION).strip()
        if not first.startswith(_DESCRIPTION) or not 1 <= len(description) <= 1024:
            raise ValueError(f"{path}: the first line must be '-- <description of 1-1024 chars>', got {first!r}")
        queries.append(QueryFile(path.stem, description, sql))
    if not queries:
        raise ValueError(f"no *.sql files in {directory}")
    return queries


def projection_parameters(location: str, dataset: Dataset) -> dict[str, str]:
    """Table parameters for daily partition projection on the dataset's partition key."""
    key = dataset.partition_key
    return {
        "classification": "parquet",
        "parquet.compression": "ZSTD",
        "projection.enabled": "true",
        f"projection.{key}.type": "date",
        f"projection.{key}.format": "yyyy-MM-dd",
        f"projection.{key}.range": f"{FIRST_DAY},NOW",
        f"projection.{key}.interval": "1",
        f"projection.{key}.interval.unit": "DAYS",
        "storage.location.template": f"{location}{key}=${{{key}}}/",
    }


class Analytics(Construct):
    """Glue catalog, Athena workgroup (named after the database) and named queries over the data bucket."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        data_bucket: s3.IBucket,
        data_prefix: str,
        results_bucket: s3.IBucket,
        bytes_scanned_cutoff: int,
        database_name: str,
    ) -> None:
        super().__init__(scope, id)
        if not _NAME.fullmatch(database_name):
            raise ValueError(f"database_name must match {_NAME.pattern}, got {database_name!r}")
        if bytes_scanned_cutoff < MIN_CUTOFF:
            raise ValueError(f"bytes_scanned_cutoff must be at least {MIN_CUTOFF} (Athena's minimum)")
        account = cdk.Stack.of(self).account
        layout = Layout(validate_prefix(data_prefix))
        self.database_name = database_name
        self.workgroup_name = database_name

        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name, description="IAM Organizations access report snapshots"
            ),
        )
        self.tables: dict[str, glue.CfnTable] = {
            dataset.name: self._table(dataset, f"s3://{data_bucket.bucket_name}/{layout.dataset(dataset)}")
            for dataset in DATASETS
        }

        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=self.workgroup_name,
            description="Queries over the org access report snapshots",
            # Deleting the stack should not fail on saved queries and history of the workgroup.
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                # Users cannot override the output location, encryption or the scan limit per query.
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=bytes_scanned_cutoff,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{results_bucket.bucket_name}/{self.workgroup_name}/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                    expected_bucket_owner=account,
                ),
            ),
        )

        acknowledge_guard(
            self.workgroup,
            {
                "athena_workgroup_results_encrypted_at_rest_kms_check": "SSE-S3, as the results bucket it writes "
                f"to (infra/storage.py): results are derived from IAM usage metadata and expire after {RESULTS_DAYS} "
                "days; a KMS key would add a key grant to every Athena user and narrow nothing"
            },
        )

        self.named_queries: dict[str, athena.CfnNamedQuery] = {
            query.name: athena.CfnNamedQuery(
                self,
                f"Query-{query.name}",
                name=query.name,
                description=query.description,
                query_string=query.sql,
                database=self.database.ref,  # Ref of a database is its name, and orders creation
                work_group=self.workgroup.ref,
            )
            for query in load_queries()
        }

    def _table(self, dataset: Dataset, location: str) -> glue.CfnTable:
        partition = glue.CfnTable.ColumnProperty(
            name=dataset.partition_key, type="string", comment="snapshot day, YYYY-MM-DD (from the S3 key)"
        )
        return glue.CfnTable(
            self,
            f"Table-{dataset.name}",
            catalog_id=self.database.catalog_id,
            database_name=self.database.ref,
            table_input=glue.CfnTable.TableInputProperty(
                name=dataset.name,
                table_type="EXTERNAL_TABLE",
                parameters=projection_parameters(location, dataset),
                partition_keys=[partition],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[
                        glue.CfnTable.ColumnProperty(name=column.name, type=column.glue_type, comment=column.comment)
                        for column in dataset.columns
                    ],
                    location=location,
                    input_format=PARQUET_INPUT,
                    output_format=PARQUET_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=PARQUET_SERDE),
                    compressed=True,
                ),
            ),
        )
