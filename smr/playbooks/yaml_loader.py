"""A safe YAML loader with YAML 1.2 scalars: ``10:00`` and ``off`` stay strings.

YAML 1.1 reads unquoted ``10:00`` as the base-60 integer 600, which would turn
``wait: {until: 10:00}`` into nonsense, and ``no``/``off`` as booleans, which breaks
keyword lists and ids. Only ``true``/``false`` are booleans here.
"""

import re
from typing import Any

import yaml

from smr.edge import unstorable

_INT = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_REPLACED_TAGS = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


class PlaybookYamlLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Plain YAML keeps the last of two equal keys without a word; in a playbook that hides
        # a step or a setting, so it is an error at the second one.
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
                if key in seen:
                    line = seen[key].start_mark.line + 1
                    raise yaml.constructor.ConstructorError(
                        problem=f"key '{key}' appears twice (first on line {line})",
                        problem_mark=key_node.start_mark,
                    )
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)

    def construct_scalar(self, node: yaml.ScalarNode | yaml.MappingNode) -> Any:
        # "\0" and "\ud800" escapes make text no database or JSON answer can hold.
        value = super().construct_scalar(node)
        if isinstance(value, str) and (problem := unstorable(value)):
            raise yaml.constructor.ConstructorError(
                problem=f"the text {problem}", problem_mark=node.start_mark
            )
        return value


PlaybookYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
PlaybookYamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
PlaybookYamlLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
PlaybookYamlLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def compose_document(text: str) -> tuple[yaml.Node | None, Any]:
    """Return the node tree (for error positions) and the plain data of a single document."""
    loader = PlaybookYamlLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data
