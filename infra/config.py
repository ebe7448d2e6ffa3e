"""The deployment's configuration: `cdk.json` context (key `collector`), validated before synth.

`CollectorConfig` is every group of tunables declared in `lambdas.collector.settings` (the one
declaration of each setting's type, default, bounds and description); an unknown or invalid key
fails the synth with its name. Nothing here calls AWS.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, model_validator

from lambdas.collector.settings import (
    Alerting,
    Deployment,
    ExternalId,
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


class ConfigError(ValueError):
    """The `collector` context in cdk.json is invalid; the message names the key."""


class CollectorConfig(
    Deployment, Alerting, Page, Guardrails, GuardrailTargets, Snapshot, Reporting, Location, Lanes, Pace, Selection
):
    """Context key `collector`: every setting, each with its declared default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _external_id_goes_with_a_role(self) -> CollectorConfig:
        if self.external_id and not self.reporter_role_arn:
            raise ValueError("external_id is only used with reporter_role_arn (the cross-account reporter role)")
        return self

    @property
    def max_rounds(self) -> int:
        """The Choice state's bound: poll's own limit, plus fetch rounds and slack."""
        return 2 * self.poll_max_attempts + 50


class ReporterStackConfig(BaseModel):
    """Context key `reporter_stack`: the reporter role alone, for the management account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    collector_account: Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
    external_id: ExternalId


M = TypeVar("M", bound=BaseModel)


def load_config(context: Any) -> CollectorConfig:
    """Context key `collector` as cdk.json holds it, or as JSON text (`cdk synth -c collector='{...}'`)."""
    return _load(CollectorConfig, "collector", context or {})


def load_reporter_stack(context: Any) -> ReporterStackConfig | None:
    """Context key `reporter_stack`, if given (`-c reporter_stack='{"collector_account": ..., ...}'`)."""
    return _load(ReporterStackConfig, "reporter_stack", context) if context else None


def _load(model: type[M], key: str, context: Any) -> M:
    try:
        return model.model_validate(json.loads(context) if isinstance(context, str) else context)
    except json.JSONDecodeError as error:
        raise ConfigError(f"cdk.json context '{key}': not JSON: {error}") from None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"cdk.json context '{key}': {problems}") from None
