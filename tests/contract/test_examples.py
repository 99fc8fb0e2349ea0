"""Every event type has a realistic example that its schema accepts and the catalog decodes."""

from __future__ import annotations

import json
from pathlib import Path

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
