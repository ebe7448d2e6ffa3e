"""Every event model refuses bad input naming the field; settings fail naming the variable."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from lambdas.collector.config import AlertSettings, DiscoverSettings, ReporterSettings, load
from lambdas.collector.errors import ConfigurationError
from lambdas.collector.models import (
    AlertEvent,
    BatchState,
    DiscoverEvent,
    FinalizeEvent,
    GenerateEvent,
    Polling,
    Scope,
    TargetType,
    normalize_target_id,
)
from lambdas.collector.settings import Pace

ORG = "o-a1b2c3d4e5"
ROOT = f"{ORG}/r-ab12"
OU = f"{ROOT}/ou-ab12-cdefgh12"
RUN = {
    "run_id": "run-1",
    "dt": "2026-11-24",
    "collected_at": "2026-11-24T03:00:00Z",
    "organization_id": ORG,
    "bucket": "collector-data",
    "manifest_key": "runs/run-1/manifest.json",
    "targets": 2,
    "batches": 1,
    "polling": {"initial_wait_seconds": 3, "max_wait_seconds": 60, "max_attempts": 40, "inline_wait_seconds": 10},
}
TARGET = {"path": f"{OU}/111122223333", "type": "ACCOUNT", "id": "111122223333", "name": "Dev"}
JOB = {"target": TARGET, "status": "TRUNCATED", "job_id": "a" * 36, "marker": "m1"}
SNAPSHOT = {
    "run_id": "run-1",
    "dt": "2026-11-24",
    "targets": 2,
    "jobs_by_status": {"COMPLETED": 2},
    "rows": 10,
    "carried_over_targets": 0,
    "files": {"access_details": 1},
    "replaced_files": 0,
}
VALID: dict[type[BaseModel], dict[str, Any]] = {
    DiscoverEvent: {
        "run_id": "run-1",
        "started_at": "2026-11-24T03:00:00Z",
        "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:collector",
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:collector:run-1",
    },
    GenerateEvent: {"run": RUN, "batch": {"batch": 0, "targets": [TARGET]}},
    BatchState: {"run": RUN, "batch": 0, "jobs": [JOB], "pending": 0, "truncated": 1},
    FinalizeEvent: {"run": RUN},
    AlertEvent: {"run": RUN, "snapshot": SNAPSHOT},
}


def changed(model: type[BaseModel], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    event = deepcopy(VALID[model])
    node: Any = event
    for step in path[:-1]:
        node = node[step]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return event


BAD = [
    (DiscoverEvent, ("run_id",), "run 1/../x", "run_id"),
    (DiscoverEvent, ("started_at",), "2026-11-24T03:00:00", "started_at"),
    (DiscoverEvent, ("options",), ["scope"], "options"),
    (DiscoverEvent, ("surprise",), 1, "surprise"),
    (DiscoverEvent, ("state_machine_arn",), KeyError, "state_machine_arn"),
    (
        DiscoverEvent,
        ("state_machine_arn",),
        "arn:aws:states:us-east-1:123456789012:execution:collector:run-1",
        "state_machine_arn",
    ),
    (
        DiscoverEvent,
        ("execution_arn",),
        "arn:aws:states:us-east-1:123456789012:execution:other:run-1",
        "not execution 'run-1' of",
    ),
    (
        DiscoverEvent,
        ("execution_arn",),
        "arn:aws:states:us-east-1:123456789012:execution:collector:run-2",
        "not execution 'run-1' of",
    ),
    (GenerateEvent, ("batch", "targets"), [], "targets"),
    (GenerateEvent, ("batch", "targets", 0, "path"), "o-a1b2c3d4e5/r-ab12/ou-bad", "path"),
    (GenerateEvent, ("batch", "targets", 0, "id"), "222233334444", "does not end with the target id"),
    (GenerateEvent, ("batch", "targets", 0, "type"), "ORGANIZATIONAL_UNIT", "is not of type"),
    (GenerateEvent, ("batch", "targets", 0, "policy_id"), "p-1", "policy_id"),
    (GenerateEvent, ("run", "organization_id"), "org-1", "organization_id"),
    (GenerateEvent, ("run", "targets"), 0, "targets"),
    (GenerateEvent, ("run", "prefix"), "no-trailing-slash", "prefix"),
    (GenerateEvent, ("run", "polling"), KeyError, "polling"),
    (BatchState, ("jobs", 0, "marker"), KeyError, "marker goes with"),
    (BatchState, ("jobs", 0, "job_id"), "short", "job_id"),
    (BatchState, ("jobs", 0, "status"), "DONE", "status"),
    (BatchState, ("run", "dt"), "24/11/2026", "dt"),
    (FinalizeEvent, ("run",), KeyError, "run"),
    (AlertEvent, ("snapshot", "rows"), -1, "rows"),
]


@pytest.mark.parametrize(
    ("model", "path", "value", "named"), BAD, ids=[f"{m.__name__}-{'.'.join(map(str, p))}" for m, p, _, _ in BAD]
)
def test_bad_events_are_refused_naming_the_field(
    model: type[BaseModel], path: tuple[Any, ...], value: Any, named: str
) -> None:
    model.model_validate(VALID[model])  # the untouched event is valid
    with pytest.raises(ValidationError, match=named):
        model.model_validate(changed(model, path, value))


def test_a_batch_state_round_trips_with_its_counts() -> None:
    state = BatchState.model_validate(VALID[BatchState])
    payload = state.payload()
    assert (payload["pending"], payload["truncated"]) == (0, 1)
    assert BatchState.model_validate(payload) == state


def test_polling_backs_off_by_doubling_up_to_the_cap() -> None:
    polling = Polling(initial_wait_seconds=5, max_wait_seconds=60, max_attempts=10, inline_wait_seconds=0)
    assert [polling.wait_after(n) for n in range(6)] == [5, 10, 20, 40, 60, 60]
    assert polling.wait_after(10_000) == 60


def test_scopes_choose_target_types() -> None:
    assert Scope.ALL.target_types == set(TargetType)
    assert Scope.OUS.target_types == {TargetType.ORGANIZATIONAL_UNIT}


REPORTER_ENV = {
    "DATA_BUCKET": "collector-data",
    "REPORT_ROLE_ARN": "arn:aws:iam::123456789012:role/Reader",
    "LIMITS_TABLE": "collector-limits",
}


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> Any:
    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


def test_a_missing_setting_is_named(environ: Any) -> None:
    environ(DATA_BUCKET="collector-data")
    with pytest.raises(ConfigurationError, match="REPORT_ROLE_ARN: Field required"):
        load(ReporterSettings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REPORT_ROLE_ARN", "arn:aws:iam::123:role/Reader"),
        ("DATA_BUCKET", "Not_A_Bucket"),
        ("DATA_PREFIX", "no-trailing-slash"),
        ("REPORT_SESSION_SECONDS", "60"),
        ("BATCH_SIZE", "1000"),
        ("SCOPE", "everything"),
        ("INCLUDE_IDS", '["ou-ab12-cdefgh12", "bogus"]'),
        ("INCLUDE_IDS", "ou-ab12-cdefgh12,111122223333"),
        ("POLICY_IDS", '["p-1"]'),
    ],
)
def test_an_invalid_setting_is_named(environ: Any, name: str, value: str) -> None:
    environ(**{**REPORTER_ENV, name: value})
    with pytest.raises(ConfigurationError, match=name):
        load(DiscoverSettings)


def test_lists_are_json_ids_lose_trailing_slashes_and_defaults_are_declared(environ: Any) -> None:
    environ(**REPORTER_ENV, INCLUDE_IDS='["ou-ab12-cdefgh12/", "o-a1b2c3d4e5/r-ab12/111122223333"]', SCOPE="accounts")
    settings = load(DiscoverSettings)
    assert settings.include_ids == ["ou-ab12-cdefgh12", "111122223333"]
    assert (settings.scope, settings.batch_size, settings.polling) == (Scope.ACCOUNTS, 100, Pace().polling)
    assert load(ReporterSettings).safety_margin_seconds == 30


@pytest.mark.parametrize(
    "written",
    ["ou-ab12-cdefgh12", "ou-ab12-cdefgh12/", " ou-ab12-cdefgh12// ", "o-a1b2c3d4e5/r-ab12/ou-ab12-cdefgh12/"],
)
def test_a_target_id_is_bare_however_it_is_written(written: str) -> None:
    assert normalize_target_id(written) == "ou-ab12-cdefgh12"


def test_an_execution_input_overrides_run_settings_and_names_a_bad_key(environ: Any) -> None:
    environ(**REPORTER_ENV)
    settings = load(DiscoverSettings)
    run = settings.for_run({"scope": "ous", "include_ids": ["ou-ab12-cdefgh12/"], "poll_max_attempts": 3})
    assert (run.scope, run.include_ids, run.poll_max_attempts) == (Scope.OUS, ["ou-ab12-cdefgh12"], 3)
    assert (run.batch_size, settings.scope) == (settings.batch_size, Scope.ALL)  # the rest, and the original, kept
    bad: list[tuple[dict[str, Any], str]] = [
        ({"scope": "everything"}, "scope"),
        ({"surprise": 1}, "surprise: Extra inputs"),
        ({"include_ids": ["bogus"]}, "include_ids.0"),
        ({"iam_calls_per_second": 0}, "iam_calls_per_second"),
        ({"poll_max_attempts": 41}, "exceeds the deployed 40"),
        ({"max_concurrency": 5}, "max_concurrency: Extra inputs"),  # fixed by the deployed state machine
    ]
    for options, named in bad:
        with pytest.raises(ConfigurationError, match=f"execution input: .*{named}"):
            settings.for_run(options)


def test_alert_settings_parse_the_allowlists(environ: Any) -> None:
    environ(
        ALERT_TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:org-access-alerts",
        ALLOWLIST='["sts", "kms"]',
        ALLOWLIST_BY_TARGET='{"ou-ab12-cdefgh12": ["gamelift"]}',
    )
    settings = load(AlertSettings)
    assert settings.allowlist == ["sts", "kms"]
    assert settings.allowlist_by_target == {"ou-ab12-cdefgh12": ["gamelift"]}
    assert settings.unused_after_days == 90
    environ(ALLOWLIST_BY_TARGET="{not json")
    with pytest.raises(ConfigurationError, match="ALLOWLIST_BY_TARGET"):
        load(AlertSettings)
