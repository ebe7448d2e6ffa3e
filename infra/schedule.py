"""The daily start: EventBridge Scheduler with a retry policy and a dead-letter queue."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.nag import acknowledge, acknowledge_guard


class Schedule(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        expression: str,
        time_zone: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            {"SQS3": "this queue is itself the dead-letter queue (of the schedule); Monitoring alarms on it"},
        )
        acknowledge_guard(
            self.dead_letter_queue,
            {"sqs_dlq_check": "this queue is itself the dead-letter queue (of the schedule); Monitoring alarms on it"},
        )
        self.schedule = scheduler.Schedule(
            self,
            "Daily",
            description="Starts the Organizations access report collector",
            schedule=scheduler.ScheduleExpression.expression(expression, cdk.TimeZone.of(time_zone)),
            target=targets.StepFunctionsStartExecution(
                state_machine,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=3,
                max_event_age=cdk.Duration.hours(2),
                input=scheduler.ScheduleTargetInput.from_object({}),
            ),
        )
