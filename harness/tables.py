"""Plain-text tables for the terminal: rows of values, or an Arrow table's first rows."""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

import pyarrow as pa

SHOWN_ROWS = 8


def _cell(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return "-" if value is None else str(value)


def print_table(rows: list[list[object]], headers: list[str], out: TextIO) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def print_arrow(table: pa.Table, out: TextIO, limit: int = SHOWN_ROWS) -> None:
    rows = [list(row.values()) for row in table.slice(0, limit).to_pylist()]
    print_table(rows, table.column_names, out)
    if table.num_rows > limit:
        out.write(f"  … and {table.num_rows - limit} more row(s)\n")
