"""Each setting is declared once; the context model, the functions' environments, the execution
input and the README's table are derived from that declaration and agree with it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from infra.config import CollectorConfig
from infra.docs import README, configuration_table, readme_with_table
from lambdas.collector.config import BY_FUNCTION, DiscoverSettings, load
from lambdas.collector.models import Scope
from lambdas.collector.settings import GROUPS, RUN_OPTIONS, Deployment, Pace, Selection, environment, environment_value

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT / "app.py",
    *(p for d in ("lambdas", "infra", "harness", "iam_report_emulator") for p in (ROOT / d).rglob("*.py")),
]
SETTINGS_MODULE = ROOT / "lambdas" / "collector" / "settings.py"


def declarations(name: str) -> list[str]:
    """Where a class body declares an attribute `name` with a value: a default, bounds or a
    description (`name: int = Field(...)`, `name: int = 3`). Attributes that only carry a value
    from elsewhere (`name: int`, a required field) are uses, not declarations."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    declared = isinstance(statement, ast.AnnAssign) and statement.value is not None
                    target = statement.target if isinstance(statement, ast.AnnAssign) and declared else None
                    if isinstance(target, ast.Name) and target.id == name:
                        found.append(f"{path.relative_to(ROOT)}:{node.name}")
    return found


def string_literals() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.setdefault(node.value, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_setting_is_declared_in_exactly_one_place() -> None:
    # Given every key of the deployment's configuration
    names = list(CollectorConfig.model_fields)
    assert len(names) >= 30
    # Then each is a field of exactly one class, in the settings module
    places = {name: declarations(name) for name in names}
    assert {name: len(where) for name, where in places.items() if len(where) != 1} == {}
    assert {where[0].split(":")[0] for where in places.values()} == {str(SETTINGS_MODULE.relative_to(ROOT))}


def test_no_setting_is_read_or_written_by_its_variable_name_by_hand() -> None:
    literals = string_literals()
    by_hand = {
        name.upper(): literals[name.upper()] for name in CollectorConfig.model_fields if name.upper() in literals
    }
    assert by_hand == {}


def test_the_readme_table_is_the_generated_one() -> None:
    readme = README.read_text()
    assert readme_with_table(readme) == readme, "run `make docs`"
    for name in CollectorConfig.model_fields:
        assert f"| `{name}` |" in configuration_table()


def test_each_functions_environment_round_trips_every_value_it_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a configuration where every per-function setting differs from its default
    config = CollectorConfig(
        scope=Scope.OUS,
        include_ids=["ou-ab12-abcdefgh", "111122223333"],
        allowlist_by_target={"111122223333": ["gamelift"]},
        iam_calls_per_second=2.5,
        include_management_account=True,
        external_id="abc-123",
        reporter_role_arn="arn:aws:iam::111122223333:role/R",
        data_prefix="x/y/",
        rows_per_file=5000,
    )
    for function, model in BY_FUNCTION.items():
        variables = environment(model, config)
        # When the function reads its environment (plus the wiring the stack adds)
        wiring = {"report_role_arn": "arn:aws:iam::111122223333:role/R", "data_bucket": "bucket-1"}
        wiring["alert_topic_arn"] = "arn:aws:sns:us-east-1:111122223333:t"
        wiring["limits_table"] = "collector-limits"
        with monkeypatch.context() as env:
            for name, value in {**variables, **{k.upper(): v for k, v in wiring.items()}}.items():
                env.setenv(name, value)
            loaded = load(model)
        fields = set(model.model_fields) & set(CollectorConfig.model_fields)
        # Then it has the configured value of every setting it reads, and no variable it does not read
        assert {k: getattr(loaded, k) for k in fields} == {k: getattr(config, k) for k in fields}, function
        assert {v.lower() for v in variables} <= set(model.model_fields)
    assert environment(DiscoverSettings, config)["INCLUDE_IDS"] == '["ou-ab12-abcdefgh","111122223333"]'
    assert environment(DiscoverSettings, config)["IAM_CALLS_PER_SECOND"] == "2.5"
    assert "SCHEDULE" not in {v for model in BY_FUNCTION.values() for v in environment(model, config)}


def test_the_execution_input_takes_exactly_the_per_run_settings_with_their_bounds() -> None:
    per_run = [name for group in GROUPS if group.per_run for name in group.model_fields]
    assert list(RUN_OPTIONS.model_fields) == per_run
    assert set(Selection.model_fields) | set(Pace.model_fields) == set(per_run)
    assert not set(per_run) & set(Deployment.model_fields)
    assert RUN_OPTIONS.model_validate({}).model_dump(exclude_unset=True) == {}
    for bad in ({"batch_size": 251}, {"poll_max_wait_seconds": -1}, {"schedule": "rate(1 day)"}):
        with pytest.raises(ValidationError):
            RUN_OPTIONS.model_validate(bad)


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, None), (True, "true"), (20.0, "20"), (2.5, "2.5"), (["a"], '["a"]'), ({}, "{}"), (3, "3")],
)
def test_values_are_written_as_the_functions_read_them(value: object, text: str | None) -> None:
    assert environment_value(value) == text


def test_every_group_is_in_the_deployment_model() -> None:
    model_fields = {name for group in GROUPS for name in group.model_fields}
    assert model_fields == set(CollectorConfig.model_fields)
    assert all(issubclass(CollectorConfig, group) for group in GROUPS)
    assert issubclass(CollectorConfig, BaseModel)
