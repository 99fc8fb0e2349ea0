"""Schemas only change additively: current schemas against the published snapshot, and the rules."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sbcontracts import catalog, generate
from sbcontracts.compat import breaking_changes, catalog_breaking_changes

Schema = dict[str, Any]

BASE: Schema = {
    "$defs": {
        "Ticket": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "ticket_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "status": {"enum": ["open", "pending", "closed"], "type": "string"},
                "priority": {"type": "integer", "minimum": 1, "maximum": 5},
                "note": {"anyOf": [{"type": "string", "maxLength": 500}, {"type": "null"}]},
            },
            "required": ["ticket_id", "status"],
        }
    },
    "type": "object",
    "properties": {
        "type": {"const": "com.switchboard.ticket.opened", "type": "string"},
        "data": {"$ref": "#/$defs/Ticket"},
    },
    "required": ["type", "data"],
}


def ticket(schema: Schema) -> Schema:
    """The nested payload definition, reached only through a `$ref` in the envelope."""
    return schema["$defs"]["Ticket"]


def changed(mutate: Callable[[Schema], None]) -> Schema:
    schema = copy.deepcopy(BASE)
    mutate(schema)
    return schema


def test_current_schemas_are_compatible_with_the_published_snapshot() -> None:
    problems = catalog_breaking_changes(generate.published_schemas(), generate.render_schemas())
    assert problems == [], "breaking changes need a new .v2 event type"


def test_every_event_type_is_published() -> None:
    unpublished = {m.event_type for m in catalog.EVENT_MODELS} - set(generate.published_schemas())
    assert not unpublished, "run `python -m sbcontracts.generate --publish`"


BREAKING = {
    "property removed": (lambda s: ticket(s)["properties"].pop("priority"), "property removed"),
    "type changed": (
        lambda s: ticket(s)["properties"]["priority"].update(type="string"),
        "type changed",
    ),
    "nullable made required": (
        lambda s: ticket(s)["properties"].update(note={"type": "string"}),
        "type changed",
    ),
    "new required property": (
        lambda s: (
            ticket(s)["properties"].update(queue={"type": "string"}),
            ticket(s)["required"].append("queue"),
        ),
        "new required property",
    ),
    "property became required": (
        lambda s: ticket(s)["required"].append("priority"),
        "property became required",
    ),
    "enum value removed": (
        lambda s: ticket(s)["properties"]["status"].update(enum=["open", "closed"]),
        "'pending' removed",
    ),
    "const changed": (
        lambda s: s["properties"]["type"].update(const="com.switchboard.ticket.created"),
        "'com.switchboard.ticket.opened' removed",
    ),
    "maxLength lowered": (
        lambda s: ticket(s)["properties"]["ticket_id"].update(maxLength=32),
        "maxLength tightened",
    ),
    "maxLength lowered inside a nullable": (
        lambda s: ticket(s)["properties"]["note"]["anyOf"][0].update(maxLength=100),
        "maxLength tightened",
    ),
    "minimum raised": (
        lambda s: ticket(s)["properties"]["priority"].update(minimum=2),
        "minimum tightened",
    ),
    "additionalProperties tightened": (
        lambda s: s.update(additionalProperties=False),
        "additionalProperties tightened",
    ),
}


@pytest.mark.parametrize("mutate,expected", BREAKING.values(), ids=BREAKING.keys())
def test_breaking_change_is_reported(mutate: Callable[[Schema], None], expected: str) -> None:
    problems = breaking_changes(BASE, changed(mutate))
    assert any(expected in p for p in problems), problems


ADDITIVE = {
    "new optional property": lambda s: ticket(s)["properties"].update(tags={"type": "array"}),
    "new enum value": lambda s: ticket(s)["properties"]["status"]["enum"].append("resolved"),
    "integer widened to number": lambda s: ticket(s)["properties"]["priority"].update(
        type="number"
    ),
    "maxLength raised": lambda s: ticket(s)["properties"]["ticket_id"].update(maxLength=128),
    "made nullable": lambda s: ticket(s)["properties"].update(
        ticket_id={"anyOf": [{"type": "string", "maxLength": 64}, {"type": "null"}]}
    ),
    "requirement dropped": lambda s: ticket(s)["required"].remove("status"),
    "description edited": lambda s: ticket(s).update(description="A support case."),
}


@pytest.mark.parametrize("mutate", ADDITIVE.values(), ids=ADDITIVE.keys())
def test_additive_change_is_compatible(mutate: Callable[[Schema], None]) -> None:
    assert breaking_changes(BASE, changed(mutate)) == []


def test_identical_schemas_are_compatible() -> None:
    assert breaking_changes(BASE, copy.deepcopy(BASE)) == []


def test_removed_event_type_is_reported() -> None:
    problems = catalog_breaking_changes({"a.created": BASE, "a.deleted": BASE}, {"a.created": BASE})
    assert problems == ["a.deleted: event type removed"]


def test_catalog_problems_name_the_event_type() -> None:
    narrowed = changed(lambda s: ticket(s)["properties"].pop("status"))
    problems = catalog_breaking_changes({"a.created": BASE}, {"a.created": narrowed})
    assert problems == ["a.created: $.data.status: property removed"]


def test_publish_adds_new_event_types(tmp_path: Path) -> None:
    assert generate.publish(tmp_path) == []
    assert set(generate.published_schemas(tmp_path)) == {m.event_type for m in catalog.EVENT_MODELS}


def test_publish_refuses_a_breaking_change_and_writes_nothing(tmp_path: Path) -> None:
    generate.publish(tmp_path)
    event_type = catalog.EVENT_MODELS[0].event_type
    snapshot = tmp_path / "published" / f"{event_type}.json"
    old = json.loads(snapshot.read_text())
    # As if the published version had a field that the current model no longer has.
    old["properties"]["retired"] = {"type": "string"}
    snapshot.write_text(generate.dump_json(old))
    problems = generate.publish(tmp_path)
    assert problems == [f"{event_type}: $.retired: property removed"]
    assert json.loads(snapshot.read_text()) == old
