"""IAM report pages to `access_details` columns: built column by column, never as row dicts.

A page's `AccessDetails` become rows that also carry the job's context (run, target, job dates,
counts). Times are stored in UTC whatever zone botocore parsed them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from lambdas.collector.schema import ACCESS_DETAILS, Dataset


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: IAM times must carry a zone")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class JobContext:
    """What every row of one report job repeats."""

    run_id: str
    collected_at: datetime
    organization_id: str
    target_path: str
    target_type: str
    target_id: str
    target_name: str | None
    policy_id: str | None
    job_id: str | None
    job_creation_date: datetime | None
    job_completion_date: datetime | None
    services_accessible: int
    services_not_accessed: int

    def columns(self) -> dict[str, Any]:
        values = asdict(self)
        for name in ("collected_at", "job_creation_date", "job_completion_date"):
            values[name] = as_utc(values[name])
        return values


def account_of(entity_path: str | None) -> str | None:
    """The account id at the end of an entity path, if the path names an account."""
    if not entity_path:
        return None
    leaf = entity_path.rstrip("/").rsplit("/", 1)[-1]
    return leaf if len(leaf) == 12 and leaf.isdigit() else None


class ColumnBuffer:
    """Rows of a dataset accumulated as one list per column."""

    def __init__(self, dataset: Dataset = ACCESS_DETAILS) -> None:
        self.dataset = dataset
        self.columns: dict[str, list[Any]] = {name: [] for name in dataset.column_names}

    def __len__(self) -> int:
        return len(self.columns[self.dataset.column_names[0]])

    def add_access_details(self, context: JobContext, details: Iterable[Mapping[str, Any]]) -> int:
        """Append one row per access detail of a page; returns how many."""
        columns = self.columns
        added = 0
        for detail in details:
            when = as_utc(detail.get("LastAuthenticatedTime"))
            entity_path = detail.get("EntityPath")
            columns["service_name"].append(detail["ServiceName"])
            columns["service_namespace"].append(detail["ServiceNamespace"])
            columns["last_authenticated_time"].append(when)
            columns["last_authenticated_region"].append(detail.get("Region"))
            columns["last_authenticated_entity_path"].append(entity_path)
            columns["last_authenticated_account_id"].append(account_of(entity_path))
            columns["total_authenticated_entities"].append(int(detail.get("TotalAuthenticatedEntities") or 0))
            columns["accessed"].append(when is not None)
            added += 1
        for name, value in context.columns().items():
            columns[name].extend([value] * added)
        return added

    def to_table(self) -> pa.Table:
        return pa.Table.from_pydict(self.columns, schema=self.dataset.arrow_schema)


def add_row(buffer: ColumnBuffer, values: Mapping[str, Any]) -> None:
    """Append one row given as a mapping with every column of the buffer's dataset."""
    for name, column in buffer.columns.items():
        column.append(values[name])
