"""The JSON Schemas shipped for editors match the models, and agree with the loader."""

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from typer.testing import CliRunner

from adapters import PLAYBOOK_CHANNELS
from smr.cli import app
from smr.playbooks import Playbook
from smr.playbooks.jsonschema import DIALECT, playbook_schema, policies_schema, render
from smr.playbooks.yaml_loader import compose_document

BUNDLED = Path(__file__).resolve().parents[3] / "playbooks"
PLAYBOOK_FILES = sorted(p for p in BUNDLED.glob("*.yaml") if p.name != "policies.yaml")
REGENERATE = {
    "schema.json": "smr playbooks schema > playbooks/schema.json",
    "policies.schema.json": "smr playbooks schema --policies > playbooks/policies.schema.json",
}


def _generated(name: str) -> str:
    schema = policies_schema() if name == "policies.schema.json" else None
    return render(schema or playbook_schema(PLAYBOOK_CHANNELS))


def _data(path: Path) -> Any:
    return compose_document(path.read_text(encoding="utf-8"))[1]


def _problems(schema: dict[str, Any], data: Any) -> list[str]:
    validator = Draft202012Validator(schema)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]


@pytest.mark.parametrize("name", sorted(REGENERATE))
def test_shipped_schema_is_up_to_date(name: str) -> None:
    shipped = (BUNDLED / name).read_text(encoding="utf-8")
    assert shipped == _generated(name), f"{name} is stale; run: {REGENERATE[name]}"


@pytest.mark.parametrize("options", [[], ["--policies"]], ids=["playbook", "policies"])
def test_schema_command_prints_the_shipped_text(options: list[str]) -> None:
    result = CliRunner().invoke(app, ["playbooks", "schema", *options])

    assert result.exit_code == 0, result.output
    name = "policies.schema.json" if options else "schema.json"
    assert result.output == (BUNDLED / name).read_text(encoding="utf-8")


def test_schemas_are_valid_draft_2020_12() -> None:
    for schema in (playbook_schema(PLAYBOOK_CHANNELS), policies_schema()):
        assert schema["$schema"] == DIALECT
        Draft202012Validator.check_schema(schema)


def test_yaml_spellings_channels_and_strictness() -> None:
    schema = playbook_schema(PLAYBOOK_CHANNELS)
    defs = schema["$defs"]

    assert set(defs["IfStep"]["properties"]) == {"if", "then", "else"}
    assert set(defs["SetStep"]["properties"]) == {"set"}
    assert defs["SendSpec"]["properties"]["channel"]["enum"] == sorted(PLAYBOOK_CHANNELS)
    assert "order.paid" in defs["EventTrigger"]["properties"]["event"]["examples"]
    assert schema["properties"]["cooldown"]["default"] == "0s"
    objects = [schema, *defs.values()]
    assert all(node["additionalProperties"] is False for node in objects)


def test_every_field_has_a_title_and_a_description() -> None:
    for schema in (playbook_schema(PLAYBOOK_CHANNELS), policies_schema()):
        for node in [schema, *schema["$defs"].values()]:
            for key, prop in node["properties"].items():
                assert prop["title"], key
                assert prop["description"], key


@pytest.mark.parametrize("path", PLAYBOOK_FILES, ids=lambda p: p.name)
def test_bundled_playbooks_validate_and_point_at_the_schema(path: Path) -> None:
    first_line = path.read_text(encoding="utf-8").splitlines()[0]

    assert first_line == "# yaml-language-server: $schema=./schema.json"
    assert _problems(playbook_schema(PLAYBOOK_CHANNELS), _data(path)) == []


def test_bundled_policies_validate_and_point_at_their_schema() -> None:
    path = BUNDLED / "policies.yaml"
    first_line = path.read_text(encoding="utf-8").splitlines()[0]

    assert first_line == "# yaml-language-server: $schema=./policies.schema.json"
    assert _problems(policies_schema(), _data(path)) == []


VALID = {
    "id": "greet",
    "name": "问候",
    "trigger": {"event": "contact.added"},
    "steps": [
        {"wait": "{{ 2 * 3 }}d"},
        {"wait": {"until": "10:00"}},
        {"set": {"points": 5}},
        {"stop": None},
        {"send": {"channel": "mock", "text": "hi"}},
    ],
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"colour": "red"}, "$: Additional properties are not allowed ('colour' was unexpected)"),
        (
            {"cooldown": "3 days"},
            "$.cooldown: '3 days' does not match '^\\\\s*[0-9]+[smhd]\\\\s*$'",
        ),
        (
            {"steps": [{"sned": {}}]},
            "$.steps[0]: {'sned': {}} is not valid under any of the given schemas",
        ),
        (
            {"steps": [{"wait": "3 days"}]},
            "$.steps[0]: {'wait': '3 days'} is not valid under any of the given schemas",
        ),
        ({"mode": "restrat"}, "$.mode: 'restrat' is not one of ['single', 'restart', 'parallel']"),
    ],
    ids=["unknown-field", "bad-duration", "unknown-step", "bad-wait", "bad-mode"],
)
def test_schema_rejects_what_the_loader_rejects(change: dict[str, Any], problem: str) -> None:
    schema, context = playbook_schema(PLAYBOOK_CHANNELS), {"channels": PLAYBOOK_CHANNELS}
    Playbook.model_validate(VALID, context=context)
    assert _problems(schema, VALID) == []

    with pytest.raises(ValidationError):
        Playbook.model_validate(VALID | change, context=context)
    assert _problems(schema, VALID | change) == [problem]
