"""Insight: what the snapshots say (unused and newly unused services)."""
