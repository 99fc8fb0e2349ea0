"""JSON logs (structlog) with tenant and correlation ids, and no personal data."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Field names that may carry personal data: dropped from every log line, whatever logs them.
PERSONAL_FIELDS = frozenset(
    {
        "email",
        "phone",
        "name",
        "body",
        "text",
        "address",
        "subject",
        "handle",
        "first_name",
        "last_name",
        "display_name",
        "from",
        "to",
        "content",
    }
)


def drop_personal_data(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Remove fields that could carry personal data."""
    for key in PERSONAL_FIELDS.intersection(event):
        event[key] = "[redacted]"
    return event


def configure_logging(*, level: str = "INFO", json: bool = True) -> None:
    """Configure structlog and the standard library to write one JSON object per line."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_personal_data,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library (uvicorn, SQLAlchemy, aiokafka): their records
    # go through the same processors, so they too are one JSON line with ids and no personal data.
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_HANDLER_NAME = "sbkit.json"
