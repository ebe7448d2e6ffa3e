"""Athena SQL run locally: transpiled by sqlglot (Athena → DuckDB), executed by DuckDB on Arrow tables.

Syntax is translated; semantics are pinned where the engines differ and our queries care: integer
division truncates as in Trino, and the session time zone is UTC, so that `timestamp - INTERVAL 'n'
DAY` is plain arithmetic as in Athena rather than calendar days in a local zone with DST.
Queries meant for both engines should stay in a small portable subset (see queries/).
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pyarrow as pa
import sqlglot

_SESSION = ("SET integer_division = true", "SET TimeZone = 'UTC'")


def to_duckdb(sql: str) -> str:
    """The one statement of `sql` in DuckDB's dialect; more than one statement is an error."""
    statements = [statement for statement in sqlglot.transpile(sql, read="athena", write="duckdb") if statement]
    if len(statements) != 1:
        raise ValueError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


def run_query(sql: str, tables: Mapping[str, pa.Table]) -> pa.Table:
    """Run Athena `sql` over `tables`, each visible to the query under its key (e.g. `access_details`)."""
    connection = duckdb.connect(":memory:")
    try:
        for setting in _SESSION:
            connection.execute(setting)
        for name, table in tables.items():
            connection.register(name, table)
        result: pa.Table = connection.sql(to_duckdb(sql)).to_arrow_table()
        return result
    finally:
        connection.close()
