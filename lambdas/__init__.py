"""The collector's Lambda functions: thin handlers over logic modules (discover, generate, poll,
fetch, finalize, alert)."""
