"""Generate JSON Schemas and the AsyncAPI document from the event models; check drift; publish."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sbcontracts import catalog, topics
from sbcontracts.compat import catalog_breaking_changes
from sbcontracts.envelope import CloudEvent, EventData

CONTRACTS_DIR = Path(__file__).resolve().parent.parent
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_PREFIX = "urn:switchboard:schema:"
ASYNCAPI_FILE = "asyncapi.yaml"
DOCUMENT_VERSION = "1.0.0"
KAFKA_BINDING = "0.5.0"
DIFF_LINES = 40
# Mirrors the headers written by the outbox relay (sbkit.db.uow); contracts must not import sbkit.
EVENT_HEADERS = {
    "ce_type": "CloudEvents type, duplicated from the envelope so consumers can route unparsed.",
    "ce_id": "CloudEvents id, duplicated from the envelope for inbox de-duplication.",
    "ce_tenantid": "Tenant id, duplicated from the envelope.",
    "traceparent": "W3C trace context of the producing operation, when one was active.",
}
# Mirrors sbkit.bus.delivery.dlq_record: the original headers are kept, these are added.
DLQ_HEADERS = {
    "dlq.topic": "Topic the record failed on.",
    "dlq.partition": "Partition of the failed record.",
    "dlq.offset": "Offset of the failed record.",
    "dlq.key": "Key of the failed record.",
    "dlq.group": "Consumer group that failed to handle it.",
    "dlq.error.class": "Exception class of the last failure.",
    "dlq.error.message": "Exception message (truncated to 1000 characters).",
    "dlq.attempts": "How many times the handler was tried.",
    "dlq.first_failure": "ISO 8601 UTC time of the first failure.",
}


def _sorted(doc: Any) -> Any:
    """The same document with every mapping's keys sorted, independent of pydantic's order."""
    return json.loads(json.dumps(doc, sort_keys=True))


def envelope_schema(model: type[EventData]) -> dict[str, Any]:
    """The JSON Schema of the full CloudEvents envelope carrying `model`, its type pinned."""
    schema = CloudEvent[model].model_json_schema()  # type: ignore[valid-type]
    schema["properties"]["type"] = {"const": model.event_type, "title": "Type", "type": "string"}
    schema["$schema"] = SCHEMA_DIALECT
    schema["$id"] = SCHEMA_ID_PREFIX + model.event_type
    schema["description"] = (model.__doc__ or model.event_type).strip().splitlines()[0]
    schema["x-topic"] = model.topic
    return dict(_sorted(schema))


def render_schemas() -> dict[str, dict[str, Any]]:
    """Event type → envelope schema, for every model in the catalog."""
    unknown = [m.event_type for m in catalog.EVENT_MODELS if m.topic not in topics.BY_NAME]
    if unknown:
        raise ValueError(f"event types on unregistered topics: {unknown}")
    return {m.event_type: envelope_schema(m) for m in catalog.EVENT_MODELS}


def dump_json(doc: Any) -> str:
    """Deterministic JSON text: sorted keys, indent 2, trailing newline."""
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _component_schema(event_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An envelope schema moved under components.schemas, its local `$ref`s rewritten to match."""
    text = json.dumps({k: v for k, v in schema.items() if k not in ("$schema", "$id")})
    base = f"#/components/schemas/{event_type}/$defs/"
    return dict(json.loads(text.replace('"#/$defs/', f'"{base}')))


def _headers(described: dict[str, str], required: list[str]) -> dict[str, Any]:
    props = {name: {"type": "string", "description": text} for name, text in described.items()}
    return {"type": "object", "required": required, "properties": props}


def _event_message(model: type[EventData]) -> dict[str, Any]:
    headers = _headers(EVENT_HEADERS, ["ce_type", "ce_id", "ce_tenantid"])
    headers["properties"]["ce_type"]["const"] = model.event_type
    key = {"type": "string", "description": topics.BY_NAME[model.topic].key}
    return {
        "name": model.__name__,
        "title": model.event_type,
        "summary": (model.__doc__ or model.event_type).strip().splitlines()[0],
        "contentType": "application/cloudevents+json",
        "headers": headers,
        "payload": {"$ref": f"#/components/schemas/{model.event_type}"},
        "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING}},
    }


def _dead_letter_message() -> dict[str, Any]:
    headers = _headers(EVENT_HEADERS | DLQ_HEADERS, list(DLQ_HEADERS))
    return {
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "A record a consumer failed on: value and key unchanged, dlq.* headers added.",
        "headers": headers,
        "payload": {"description": "The failed record's value, unchanged; it may not be valid."},
    }


def _channel(topic: topics.Topic, *, address: str, messages: list[str]) -> dict[str, Any]:
    policy = "compact" if topic.compacted else "delete"
    config = {"cleanup.policy": [policy], "retention.ms": topic.retention_ms}
    kafka = {"partitions": topic.partitions, "topicConfiguration": config}
    dlq = address != topic.name
    return {
        "address": address,
        "description": f"Dead letters of {topic.name}." if dlq else topic.description,
        "x-partition-key": topic.key,
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
        "bindings": {"kafka": kafka | {"bindingVersion": KAFKA_BINDING}},
    }


def _channels() -> dict[str, dict[str, Any]]:
    """One channel per topic with its event types, followed by its dead-letter channel."""
    channels: dict[str, dict[str, Any]] = {}
    for topic in topics.ALL_TOPICS:
        types = [m.event_type for m in catalog.EVENT_MODELS if m.topic == topic.name]
        channels[topic.name] = _channel(topic, address=topic.name, messages=types)
        channels[topic.dlq] = _channel(topic, address=topic.dlq, messages=["DeadLetter"])
    return channels


def _operations(channels: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"send.{name}": {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": f"Publish to {channel['address']}.",
            "messages": [{"$ref": f"#/channels/{name}/messages/{m}"} for m in channel["messages"]],
        }
        for name, channel in channels.items()
    }


def render_asyncapi(schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document describing every topic, its DLQ and every event type."""
    channels = _channels()
    messages = {m.event_type: _event_message(m) for m in catalog.EVENT_MODELS}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Switchboard events",
            "version": DOCUMENT_VERSION,
            "description": "CloudEvents 1.0, structured mode, on Kafka; generated by sbcontracts.",
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {
            "kafka": {"host": "127.0.0.1:9092", "protocol": "kafka", "description": "Local broker."}
        },
        "channels": channels,
        "operations": _operations(channels),
        "components": {
            "schemas": {t: _component_schema(t, s) for t, s in schemas.items()},
            "messages": messages | {"DeadLetter": _dead_letter_message()},
        },
    }


def render(root: Path = CONTRACTS_DIR) -> dict[Path, str]:
    """Every generated file under `root` (a contracts/ directory) → its expected text."""
    schemas = render_schemas()
    files = {root / "schemas" / f"{t}.json": dump_json(s) for t, s in schemas.items()}
    document = render_asyncapi(schemas)
    files[root / ASYNCAPI_FILE] = yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, width=100
    )
    return files


def _stale(root: Path, files: dict[Path, str]) -> list[Path]:
    return sorted(p for p in (root / "schemas").glob("*.json") if p not in files)


def generate(root: Path = CONTRACTS_DIR) -> list[Path]:
    """Write every generated file under `root`, delete stale schemas; return what changed."""
    files = render(root)
    changed = []
    for path, text in files.items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(path)
    for path in _stale(root, files):
        path.unlink()
        changed.append(path)
    return changed


def check(root: Path = CONTRACTS_DIR) -> list[str]:
    """Drift between the models and the files under `root`: one entry (with a diff) per file."""
    files = render(root)
    problems = [f"stale schema (no such event type): {p}" for p in _stale(root, files)]
    for path, text in files.items():
        if not path.exists():
            problems.append(f"missing: {path}")
            continue
        on_disk = path.read_text()
        if on_disk != text:
            diff = difflib.unified_diff(
                on_disk.splitlines(), text.splitlines(), f"{path} (on disk)", f"{path} (generated)"
            )
            lines = list(diff)
            more = (
                [f"... {len(lines) - DIFF_LINES} more diff lines"]
                if len(lines) > DIFF_LINES
                else []
            )
            problems.append("\n".join([f"drift: {path}", *lines[:DIFF_LINES], *more]))
    return problems


def published_schemas(root: Path = CONTRACTS_DIR) -> dict[str, dict[str, Any]]:
    """Event type → schema as last published under `root`/published."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / "published").glob("*.json"))}


def publish(root: Path = CONTRACTS_DIR) -> list[str]:
    """Copy the current schemas into published/ unless any change breaks a published one."""
    current = render_schemas()
    problems = catalog_breaking_changes(published_schemas(root), current)
    if problems:
        return problems
    target = root / "published"
    target.mkdir(parents=True, exist_ok=True)
    for event_type, schema in current.items():
        (target / f"{event_type}.json").write_text(dump_json(schema))
    return []


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: generate (default), --check for drift, --publish to snapshot compatible schemas."""
    parser = argparse.ArgumentParser(prog="python -m sbcontracts.generate", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if generated files drifted")
    mode.add_argument("--publish", action="store_true", help="snapshot schemas into published/")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        print("\n".join(problems) or "contracts: generated files are up to date")
        if problems:
            print("run `python -m sbcontracts.generate` and commit the result", file=sys.stderr)
    elif args.publish:
        problems = publish()
        print(
            "\n".join(["breaking changes (use a new .v2 type):", *problems])
            if problems
            else "published"
        )
    else:
        problems = []
        for path in generate():
            print(f"wrote {path}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
