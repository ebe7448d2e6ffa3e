"""The daily report page: one self-contained HTML file per snapshot, for people."""
