"""The harness: our CloudFormation template stood up on the IAM report emulator, and what runs on it.

It synthesizes the CDK app, creates the template's bucket, topic, functions and state machine in moto
(`runner`), dispatches Lambda invocations in-process to the real handlers, and runs the state machine
in moto's Step Functions interpreter: the demo (`python -m harness demo`), the root's report alone
(`report`), Athena SQL on the demo's output through DuckDB (`query`), and the benchmark against a
naive collector with its cost model and memory probe (`python -m harness.bench`).

It uses `iam_report_emulator` and `lambdas`; the emulator uses nothing of ours. Its patches of moto
internals (Lambda invocations, the map runs' execution histories, a name for an execution started without
one) stay here, installed only inside their context managers.
"""
