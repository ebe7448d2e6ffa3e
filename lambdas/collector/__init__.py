"""Logic shared by the collector's Lambda handlers (no handler imports from here backwards)."""
