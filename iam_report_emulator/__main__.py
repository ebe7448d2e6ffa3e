"""Entry point of `python -m iam_report_emulator`."""

import sys

from iam_report_emulator.cli import main

sys.exit(main())
