"""JSON Schemas of playbook files and ``policies.yaml``, for editors (yaml-language-server).

Generated from the pydantic models, then given titles, descriptions and the configured channel
names. The copies shipped in ``playbooks/`` are regenerated with
``smr playbooks schema > playbooks/schema.json`` and
``smr playbooks schema --policies > playbooks/policies.schema.json``.
"""

import json
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from smr.playbooks.policies import Policies
from smr.playbooks.schema import Playbook
from smr.playbooks.schema_docs import FIELD_DOCS, MODEL_DOCS
from smr.playbooks.timespec import format_duration

DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Generator(GenerateJsonSchema):
    def encode_default(self, dft: Any) -> Any:
        # Defaults are shown as an ops person writes them: 0s, not PT0S.
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def playbook_schema(channels: Collection[str]) -> dict[str, Any]:
    """The schema of one playbook file; ``channels`` are the names a ``send`` may use."""
    schema = _generate(Playbook)
    schema["$defs"]["SendSpec"]["properties"]["channel"]["enum"] = sorted(channels)
    return schema


def policies_schema() -> dict[str, Any]:
    return _generate(Policies)


def render(schema: dict[str, Any]) -> str:
    """Stable text: the same models always give the same bytes."""
    return json.dumps(schema, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _generate(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_Generator)
    for name, node in [(model.__name__, schema), *schema.get("$defs", {}).items()]:
        _document(name, node)
    return {"$schema": DIALECT, **schema}


def _document(name: str, node: dict[str, Any]) -> None:
    node["title"], node["description"] = MODEL_DOCS[name]
    docs = FIELD_DOCS[name]
    for key, prop in node.get("properties", {}).items():
        title, text = docs[key]
        # A field type's own description says how to write the value; keep it after ours.
        hint = prop.get("description")
        prop["title"] = title
        prop["description"] = f"{text}\n{hint}" if hint else text
