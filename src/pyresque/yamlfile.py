"""YAML read as configuration: safe types only, duplicate keys refused, errors as one line.

PyYAML keeps the last of two equal keys without a word, so a ``resque-pool.yml`` or schedule file
edited in two places silently loses one of them (issue 25). Configuration files are short and
written by hand: a duplicate is always a mistake, and the error says where both copies are.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml
from yaml.nodes import MappingNode

from pyresque.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses a mapping with the same key twice."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[object, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *defaults``: merged keys may be overridden, as YAML intends
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: SafeLoader's own error says so below
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {first})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, source: str) -> Any:
    """The document in ``text``; a ConfigError ``source:line: invalid YAML: what`` otherwise."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}{yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """``:line: invalid YAML: problem`` (the problem with what the parser expected)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        problem = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem and exc.context not in problem:
            problem = f"{problem} ({exc.context})"
        return f":{exc.problem_mark.line + 1}: invalid YAML: {problem}"
    return f": invalid YAML: {' '.join(str(exc).split())}"
