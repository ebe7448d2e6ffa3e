"""Storing: the one Parquet schema, pages normalized into columns, S3 layout, parts and day snapshots."""
