"""An offline AWS sandbox for the collector: moto, extended with IAM's Organizations access report.

import sandbox
sandbox.install()          # once per process, before the first request
with mock_aws(): ...       # or: python -m sandbox serve
"""

from sandbox.iam_extension import install, report_store, store_for_account

__all__ = ["install", "report_store", "store_for_account"]
