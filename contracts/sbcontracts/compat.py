"""Schema compatibility: list the non-additive (breaking) changes between two JSON Schemas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]

# Bounds that break readers when lowered (upper) or raised (lower), or when newly imposed.
UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")


def breaking_changes(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Every change from old to new that a producer or consumer of the old schema could trip on."""
    return _Comparer(old_schema, new_schema).compare(old_schema, new_schema, "$")


def catalog_breaking_changes(old: Mapping[str, Schema], new: Mapping[str, Schema]) -> list[str]:
    """Breaking changes across catalogs (event type → schema), including event types removed."""
    problems = [f"{t}: event type removed" for t in sorted(old) if t not in new]
    for event_type in sorted(set(old) & set(new)):
        problems += [
            f"{event_type}: {p}" for p in breaking_changes(old[event_type], new[event_type])
        ]
    return problems


class _Comparer:
    """Walks two schemas side by side, resolving each one's local `$ref`s against its own root."""

    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self._roots = (old_root, new_root)
        self._seen: set[tuple[int, int]] = set()

    def compare(self, old: Schema, new: Schema, path: str) -> list[str]:
        """Breaking changes between two (sub)schemas at `path`."""
        old, new = _resolve(self._roots[0], old), _resolve(self._roots[1], new)
        if (id(old), id(new)) in self._seen:  # recursive models: each pair once
            return []
        self._seen.add((id(old), id(new)))
        problems = _type_changes(self._roots, old, new, path) + _value_changes(old, new, path)
        problems += _bound_changes(old, new, path)
        problems += self._object_changes(old, new, path)
        if isinstance(old.get("items"), Mapping) and isinstance(new.get("items"), Mapping):
            problems += self.compare(old["items"], new["items"], f"{path}[]")
        problems += self._branch_changes(old, new, path)
        return problems

    def _object_changes(self, old: Schema, new: Schema, path: str) -> list[str]:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        problems = [f"{path}.{n}: property removed" for n in old_props if n not in new_props]
        old_req, new_req = set(old.get("required", ())), set(new.get("required", ()))
        for name in sorted(new_req - old_req):
            what = "property became required" if name in old_props else "new required property"
            problems.append(f"{path}.{name}: {what}")
        for name in sorted(old_props.keys() & new_props.keys()):
            problems += self.compare(old_props[name], new_props[name], f"{path}.{name}")
        old_extra, new_extra = (
            old.get("additionalProperties", True),
            new.get("additionalProperties", True),
        )
        if old_extra is not False and new_extra is False:
            problems.append(f"{path}: additionalProperties tightened to false")
        elif old_extra is True and isinstance(new_extra, Mapping):
            problems.append(f"{path}: additionalProperties now constrained")
        elif isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):
            problems += self.compare(old_extra, new_extra, f"{path}.*")
        return problems

    def _branch_changes(self, old: Schema, new: Schema, path: str) -> list[str]:
        """Pair up anyOf/oneOf alternatives by their type and compare each pair."""
        old_root, new_root = self._roots
        new_branches = [_resolve(new_root, b) for b in _branches(new)]
        problems: list[str] = []
        for branch in _branches(old):
            resolved = _resolve(old_root, branch)
            kind = _types(old_root, resolved)
            match = next((b for b in new_branches if _types(new_root, b) == kind), None)
            if match is not None and (resolved is not old or match is not new):
                problems += self.compare(resolved, match, path)
        return problems


def _resolve(root: Schema, schema: Schema) -> Schema:
    """Follow local `$ref`s (`#/...` JSON pointers) until a concrete schema."""
    while isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#"):
        node: Any = root
        for part in schema["$ref"][1:].split("/")[1:]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


def _branches(schema: Schema) -> list[Schema]:
    return [*schema.get("anyOf", ()), *schema.get("oneOf", ())] or [schema]


def _types(root: Schema, schema: Schema) -> frozenset[str] | None:
    """The JSON types a schema admits; None means unconstrained."""
    schema = _resolve(root, schema)
    if "anyOf" in schema or "oneOf" in schema:
        found = [_types(root, b) for b in _branches(schema)]
        return None if None in found else frozenset().union(*(t for t in found if t))
    declared = schema.get("type")
    if declared is None:
        return None
    return frozenset([declared] if isinstance(declared, str) else declared)


def _type_changes(roots: tuple[Schema, Schema], old: Schema, new: Schema, path: str) -> list[str]:
    old_types, new_types = _types(roots[0], old), _types(roots[1], new)
    if new_types is None or old_types == new_types:
        return []
    if old_types is None:
        return [f"{path}: type narrowed from any to {sorted(new_types)}"]
    widened = new_types | ({"integer"} if "number" in new_types else set())
    lost = old_types - widened
    return [f"{path}: type changed, {sorted(lost)} no longer allowed"] if lost else []


def _allowed(schema: Schema) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    return list(schema["enum"]) if "enum" in schema else None


def _value_changes(old: Schema, new: Schema, path: str) -> list[str]:
    old_values, new_values = _allowed(old), _allowed(new)
    if new_values is None:
        return []
    if old_values is None:
        return [f"{path}: values now restricted to {new_values!r}"]
    removed = [v for v in old_values if v not in new_values]
    return [f"{path}: enum/const value {v!r} removed" for v in removed]


def _bound_changes(old: Schema, new: Schema, path: str) -> list[str]:
    problems = []
    for key in UPPER_BOUNDS + LOWER_BOUNDS:
        if key not in new or old.get(key) == new[key]:
            continue
        tighter = key not in old or (
            new[key] < old[key] if key in UPPER_BOUNDS else new[key] > old[key]
        )
        if tighter:
            problems.append(f"{path}: {key} tightened from {old.get(key)} to {new[key]}")
    if new.get("pattern") not in (None, old.get("pattern")):
        problems.append(f"{path}: pattern changed to {new['pattern']!r}")
    return problems
