"""The AsyncAPI document describes every topic, its dead-letter topic and every event type."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from sbcontracts import catalog, generate, topics

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def doc() -> Doc:
    return dict(yaml.safe_load((generate.CONTRACTS_DIR / generate.ASYNCAPI_FILE).read_text()))


def by_address(doc: Doc) -> dict[str, Doc]:
    return {c["address"]: c for c in doc["channels"].values()}


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(doc: Doc, ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_document_is_asyncapi_3(doc: Doc) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] == "Switchboard events"
    assert doc["servers"]["kafka"] == {
        "host": "127.0.0.1:9092",
        "protocol": "kafka",
        "description": "Local broker.",
    }


@pytest.mark.parametrize("topic", topics.ALL_TOPICS, ids=lambda t: t.name)
def test_every_topic_and_its_dlq_has_a_channel(doc: Doc, topic: topics.Topic) -> None:
    channels = by_address(doc)
    for address in (topic.name, topic.dlq):
        channel = channels[address]
        assert channel["x-partition-key"] == topic.key
        assert channel["bindings"]["kafka"]["partitions"] == topic.partitions
        assert channel["bindings"]["kafka"]["topicConfiguration"]["retention.ms"] == (
            topic.retention_ms
        )


@pytest.mark.parametrize("model", catalog.EVENT_MODELS, ids=lambda m: m.event_type)
def test_every_event_type_is_a_message_on_its_topic(doc: Doc, model: Any) -> None:
    channel = by_address(doc)[model.topic]
    messages = [resolve(doc, m["$ref"]) for m in channel["messages"].values()]
    payloads = [resolve(doc, m["payload"]["$ref"]) for m in messages]
    assert model.event_type in [p["properties"]["type"]["const"] for p in payloads]


def test_event_messages_are_cloudevents_with_kafka_headers(doc: Doc) -> None:
    for event_type in (m.event_type for m in catalog.EVENT_MODELS):
        message = doc["components"]["messages"][event_type]
        assert message["contentType"] == "application/cloudevents+json"
        headers = message["headers"]["properties"]
        assert {"ce_type", "ce_id", "ce_tenantid", "traceparent"} <= headers.keys()
        assert headers["ce_type"]["const"] == event_type


def test_every_channel_has_a_send_operation(doc: Doc) -> None:
    sent = {op["channel"]["$ref"] for op in doc["operations"].values() if op["action"] == "send"}
    assert sent == {f"#/channels/{name}" for name in doc["channels"]}


def test_every_reference_resolves(doc: Doc) -> None:
    for ref in refs(doc):
        assert resolve(doc, ref) is not None, ref
