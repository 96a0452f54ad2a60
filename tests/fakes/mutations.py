"""Walking a JSON-like document for the property tests that mutate valid inputs (playbooks, API payloads)."""

from __future__ import annotations

from typing import Any


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and list indexes) in `node`, the root's empty path first."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, prefix + (i,))
    return out


def parent_of(doc: Any, path: tuple) -> Any:
    """The container holding the item at `path` (a non-empty path)."""
    for part in path[:-1]:
        doc = doc[part]
    return doc
