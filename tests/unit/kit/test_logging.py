"""Logs are one JSON object per line, carry tenant and correlation ids, and no personal data."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from sbkit.logging import configure_logging

EMAIL = "jane.roe@example.org"
PHONE = "+4915112345678"
NAME = "Jane Roe"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Leave no handler or structlog configuration bound to this test's captured stderr."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]


def test_log_lines_are_json_with_ids_and_without_personal_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json=True)
    structlog.contextvars.bind_contextvars(tenant_id="acme", correlation_id="corr-42")
    log = structlog.get_logger("tests.logging")

    log.info("contact.created", email=EMAIL, phone=PHONE, name=NAME, contact_id="c-1")
    log.warning("message.received", body=f"hi, I am {NAME}", first_name="Jane", channel="sms")

    err = capsys.readouterr().err
    lines = json_lines(err)
    assert [line["event"] for line in lines] == ["contact.created", "message.received"]
    for line in lines:
        assert line["tenant_id"] == "acme"
        assert line["correlation_id"] == "corr-42"
        assert line["level"] in {"info", "warning"} and line["timestamp"]
    assert lines[0]["contact_id"] == "c-1"
    assert lines[1]["channel"] == "sms"
    for personal in (EMAIL, PHONE, NAME, "Jane"):
        assert personal not in err


def test_standard_library_records_are_json_lines_with_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json=True)
    structlog.contextvars.bind_contextvars(tenant_id="acme", correlation_id="corr-7")

    logging.getLogger("uvicorn.error").warning("worker %s started", 3)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")

    lines = json_lines(capsys.readouterr().err)
    assert [line["event"] for line in lines] == [
        "worker 3 started",
        "Exception in ASGI application",
    ]
    assert all(line["correlation_id"] == "corr-7" and line["tenant_id"] == "acme" for line in lines)
    assert "ValueError: boom" in lines[1]["exception"]


def test_configuring_twice_does_not_duplicate_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    configure_logging(json=True)
    logging.getLogger("sqlalchemy.pool").warning("pool exhausted")
    structlog.get_logger("tests.logging").info("once")
    events = [line["event"] for line in json_lines(capsys.readouterr().err)]
    assert events == ["pool exhausted", "once"]
