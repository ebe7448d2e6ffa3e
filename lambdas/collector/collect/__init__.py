"""Collecting: the organization walked into targets, report jobs from start to last page, the reporter session."""
