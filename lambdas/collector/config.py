"""Each function's configuration: a pydantic model of its environment variables.

A model is the function's wiring (bucket, role, topic: set by the stack from the resources it
creates, no defaults) plus the groups of tunables it reads, declared once in
`lambdas.collector.settings`; the stack derives each function's environment from the same model
(`settings.environment`). A missing or invalid setting fails at the start of the invocation,
before any side effect, with `ConfigurationError` naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import StringConstraints, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from lambdas.collector.errors import ConfigurationError
from lambdas.collector.models import BUCKET, ROLE_ARN, TABLE, TOPIC_ARN
from lambdas.collector.names import Function
from lambdas.collector.settings import (
    RUN_OPTIONS,
    Alerting,
    Guardrails,
    GuardrailTargets,
    Lanes,
    Location,
    Pace,
    Page,
    Reporting,
    Selection,
    Snapshot,
)


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)


class ReporterSettings(_Settings, Reporting):
    """generate, poll, fetch: the reporter role every IAM report call goes through, and the table of
    the limits IAM has shown (`collect.limits`), shared by every lane of a run."""

    report_role_arn: Annotated[str, StringConstraints(pattern=ROLE_ARN)]
    limits_table: Annotated[str, StringConstraints(pattern=TABLE)]


class DiscoverSettings(ReporterSettings, Selection, Pace, Lanes, Location, GuardrailTargets):
    """discover: the organization walked (with the SCPs attached where guardrails are recommended), the
    targets selected, the run's pace and where its data goes."""

    data_bucket: Annotated[str, StringConstraints(pattern=BUCKET)]

    def for_run(self, options: dict[str, Any]) -> DiscoverSettings:
        """These settings with an execution's input applied (any `per_run` setting); a bad key or
        value is a `ConfigurationError` naming it, raised before any IAM call."""
        try:
            overrides = RUN_OPTIONS.model_validate(options).model_dump(exclude_unset=True)
        except ValidationError as error:
            raise ConfigurationError(f"execution input: {_problems(error, '.'.join)}") from None
        ceiling = self.poll_max_attempts
        if overrides.get("poll_max_attempts", 0) > ceiling:
            raise ConfigurationError(
                f"execution input: poll_max_attempts {overrides['poll_max_attempts']} exceeds the deployed "
                f"{ceiling} (the state machine's loop bound derives from it)"
            )
        return type(self).model_validate({**self.model_dump(), **overrides})


class FinalizeSettings(_Settings, Snapshot):
    """finalize: the day's snapshot (its bucket and prefix come with the run)."""


class RecommendSettings(_Settings, GuardrailTargets, Guardrails):
    """recommend: how guardrail SCPs are proposed (its bucket and prefix come with the run)."""


class ReportSettings(_Settings, Page, Alerting):
    """report: the day's page (what counts as unused is the alert's `unused_after_days`)."""


class AlertSettings(_Settings, Alerting):
    """alert: what it reports, and where it publishes."""

    alert_topic_arn: Annotated[str, StringConstraints(pattern=TOPIC_ARN)]


# Each function's environment model; the stack sets exactly these variables.
BY_FUNCTION: dict[Function, type[_Settings]] = {
    Function.DISCOVER: DiscoverSettings,
    Function.GENERATE: ReporterSettings,
    Function.POLL: ReporterSettings,
    Function.FETCH: ReporterSettings,
    Function.FINALIZE: FinalizeSettings,
    Function.RECOMMEND: RecommendSettings,
    Function.REPORT: ReportSettings,
    Function.ALERT: AlertSettings,
}

S = TypeVar("S", bound=_Settings)


def _problems(error: ValidationError, where: Callable[[tuple[str, ...]], str]) -> str:
    return "; ".join(f"{where(tuple(map(str, e['loc']))) or '?'}: {e['msg']}" for e in error.errors())


def _variable(loc: tuple[str, ...]) -> str:
    return loc[0].upper() if loc else ""


def load(settings: type[S]) -> S:
    """Read `settings` from the environment; errors name the variables."""
    try:
        return settings()
    except SettingsError as error:  # a list or map that is not JSON: pydantic-settings names the field
        field = re.search(r'field "([^"]+)"', str(error))
        variable = field.group(1).upper() if field else "?"
        raise ConfigurationError(f"{settings.__name__}: {variable}: not valid JSON") from None
    except ValidationError as error:
        raise ConfigurationError(f"{settings.__name__}: {_problems(error, _variable)}") from None
