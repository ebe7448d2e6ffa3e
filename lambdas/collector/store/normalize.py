"""IAM report pages to `access_details` columns: built column by column, never as row dicts.

A page's `AccessDetails` become rows that also carry the job's context (run, target, job dates,
counts). Times are stored in UTC whatever zone botocore parsed them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from lambdas.collector.store.schema import ACCESS_DETAILS, Dataset


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


CONTEXT_COLUMNS = frozenset(field.name for field in fields(JobContext))


class ColumnBuffer:
    """Rows of a dataset accumulated column by column.

    A page's own columns are lists of values; the job context that every row of the page repeats is
    kept once per page, as a run, and expanded by Arrow (`take`) when the table is built.
    """

    def __init__(self, dataset: Dataset = ACCESS_DETAILS) -> None:
        self.dataset = dataset
        # The job's context, and the columns the snapshot sets (kept at their default here), repeat per row.
        self.defaults = dataset.defaults
        self.repeated = [name for name in dataset.column_names if name in CONTEXT_COLUMNS or name in self.defaults]
        self.columns: dict[str, list[Any]] = {name: [] for name in dataset.column_names if name not in self.repeated}
        self._runs: list[tuple[Mapping[str, Any], int]] = []
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def add_access_details(self, context: JobContext, details: Iterable[Mapping[str, Any]]) -> int:
        """Append one row per access detail of a page; returns how many."""
        page = details if isinstance(details, list) else list(details)
        columns = self.columns
        whens = [as_utc(detail.get("LastAuthenticatedTime")) for detail in page]
        paths = [detail.get("EntityPath") for detail in page]
        columns["service_name"].extend([detail["ServiceName"] for detail in page])
        columns["service_namespace"].extend([detail["ServiceNamespace"] for detail in page])
        columns["last_authenticated_time"].extend(whens)
        # IAM names a region for a never-used `iam` row too (observed): the column is the last use's region.
        regions = [detail.get("Region") if when is not None else None for detail, when in zip(page, whens, strict=True)]
        columns["last_authenticated_region"].extend(regions)
        columns["last_authenticated_entity_path"].extend(paths)
        columns["last_authenticated_account_id"].extend([account_of(path) for path in paths])
        columns["total_authenticated_entities"].extend(
            [int(detail.get("TotalAuthenticatedEntities") or 0) for detail in page]
        )
        columns["accessed"].extend([when is not None for when in whens])
        self._repeat(context.columns(), len(page))
        return len(page)

    def add_row(self, values: Mapping[str, Any]) -> None:
        """Append one row given as a mapping with every column of the dataset."""
        for name, column in self.columns.items():
            column.append(values[name])
        self._repeat(values, 1)

    def _repeat(self, values: Mapping[str, Any], count: int) -> None:
        if count:
            defaults = self.defaults
            once = {name: values[name] if name in values else defaults[name] for name in self.repeated}
            self._runs.append((once, count))
            self._rows += count

    def to_table(self) -> pa.Table:
        schema = self.dataset.arrow_schema
        index = pa.array([n for n, (_, count) in enumerate(self._runs) for _ in range(count)], pa.int32())
        arrays = []
        for field in schema:
            if field.name in self.columns:
                arrays.append(pa.array(self.columns[field.name], type=field.type))
            else:
                once = pa.array([values[field.name] for values, _ in self._runs], type=field.type)
                arrays.append(once.take(index))
        return pa.Table.from_arrays(arrays, schema=schema)
