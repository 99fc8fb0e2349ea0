"""Every event type has a realistic example that its schema accepts and the catalog decodes."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from sbcontracts import catalog, generate
from sbcontracts.envelope import EventData

EXAMPLES_DIR = generate.CONTRACTS_DIR / "examples"
MODELS = {m.event_type: m for m in catalog.EVENT_MODELS}


def example_path(event_type: str) -> Path:
    return EXAMPLES_DIR / f"{event_type}.json"


def test_every_event_type_has_an_example() -> None:
    missing = [t for t in MODELS if not example_path(t).exists()]
    assert not missing, f"add contracts/examples/<type>.json for {missing}"


def test_every_example_is_of_a_catalogued_event_type() -> None:
    orphans = [p.name for p in EXAMPLES_DIR.glob("*.json") if p.stem not in MODELS]
    assert not orphans


@pytest.mark.parametrize("event_type", MODELS)
def test_example_matches_its_generated_schema(event_type: str) -> None:
    schema = json.loads((generate.CONTRACTS_DIR / "schemas" / f"{event_type}.json").read_text())
    example = json.loads(example_path(event_type).read_text())
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(example)]
    assert errors == []


@pytest.mark.parametrize("event_type", MODELS)
def test_example_decodes_to_its_model(event_type: str) -> None:
    event = catalog.decode(example_path(event_type).read_bytes())
    assert event.type == event_type
    assert isinstance(event.data, MODELS[event_type])
    assert isinstance(event.data, EventData)


@pytest.mark.parametrize("event_type", MODELS)
def test_encoded_event_matches_its_schema(event_type: str) -> None:
    schema = json.loads((generate.CONTRACTS_DIR / "schemas" / f"{event_type}.json").read_text())
    wire = catalog.encode(catalog.decode(example_path(event_type).read_bytes()))
    Draft202012Validator(schema).validate(json.loads(wire))


@pytest.mark.parametrize("event_type", MODELS)
def test_schema_rejects_the_example_under_another_type(event_type: str) -> None:
    schema = json.loads((generate.CONTRACTS_DIR / "schemas" / f"{event_type}.json").read_text())
    example = json.loads(example_path(event_type).read_text()) | {"type": "com.example.other"}
    assert not Draft202012Validator(schema).is_valid(example)


def _datetime_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _datetime_paths(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _datetime_paths(v, (*path, i))]
    return [path] if isinstance(node, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT.+", node) else []


@pytest.mark.parametrize("event_type", MODELS)
def test_every_datetime_of_an_event_is_refused_outside_1970_to_9000(event_type: str) -> None:
    """An instant a consumer cannot add a window to (year 1, year 9999) is refused where the
    event is built, never dead-lettered by whoever reads it."""
    example = json.loads(example_path(event_type).read_text())
    paths = _datetime_paths(example)
    assert ("time",) in paths
    for path in paths:
        for value, accepted in [
            ("0001-01-01T00:00:00+01:00", False),
            ("1969-12-31T23:59:59Z", False),
            ("9999-12-31T23:59:59Z", False),
            ("1970-01-01T00:00:00Z", True),
            ("8999-12-31T23:59:59+00:00", True),
        ]:
            changed = copy.deepcopy(example)
            *parents, last = path
            target = changed
            for key in parents:
                target = target[key]
            target[last] = value
            try:
                catalog.decode(json.dumps(changed).encode())
            except catalog.InvalidEvent:
                assert not accepted, f"{path} = {value} refused"
            else:
                assert accepted, f"{path} = {value} accepted"
