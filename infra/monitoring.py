"""Alarms to the alert topic, and a dashboard.

Alarms: executions failed, timed out or aborted; any function's errors; and a schedule that could
not start a run (its dead-letter queue received a message), which no execution alarm would see.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.collector.names import NAMESPACE, SERVICE, Metric

DAY = cdk.Duration.days(1)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        functions: list[lambda_.Function],
        topic: sns.ITopic,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        notify = actions.SnsAction(topic)
        self.alarms: list[cloudwatch.Alarm] = []
        for name, metric in (
            ("ExecutionsFailed", state_machine.metric_failed(period=cdk.Duration.minutes(5))),
            ("ExecutionsTimedOut", state_machine.metric_timed_out(period=cdk.Duration.minutes(5))),
            ("ExecutionsAborted", state_machine.metric_aborted(period=cdk.Duration.minutes(5))),
            (
                "ScheduleFailedToStart",
                dead_letter_queue.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(5)),
            ),
        ):
            self._alarm(name, metric, notify)
        for function in functions:
            self._alarm(f"{function.node.id}Errors", function.metric_errors(period=cdk.Duration.minutes(5)), notify)
        run_metrics = [
            cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=m.value,
                dimensions_map={"service": SERVICE},
                statistic="Sum",
                period=DAY,
            )
            for m in Metric
        ]
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                left=[state_machine.metric_succeeded(period=DAY), state_machine.metric_failed(period=DAY)],
            ),
            cloudwatch.GraphWidget(title="Collector metrics (daily sums)", left=run_metrics),
            cloudwatch.GraphWidget(title="Lambda errors", left=[f.metric_errors(period=DAY) for f in functions]),
        )

    def _alarm(self, name: str, metric: cloudwatch.Metric, action: actions.SnsAction) -> None:
        alarm = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(action)
        self.alarms.append(alarm)
