"""Shared steps of every provider webhook: channel lookup, content type, raw body, answer."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from ingest.domain.channels import ChannelConfig, ChannelKind
from ingest.domain.model import Batch
from ingest.entrypoints.deps import IngestDeps
from ingest.service_layer import channels as channels_uc
from ingest.service_layer.errors import UnsupportedMediaType
from ingest.service_layer.messages import Accepted, Context

TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def webhook_channel(
    deps: IngestDeps, tenant: str, kind: ChannelKind, channel_id: str
) -> ChannelConfig:
    """The channel a webhook URL names (404 if unknown); cached briefly, it is read per request."""
    key = (tenant, kind.value, channel_id)
    config = deps.channels.get(key)
    if config is None:
        config = await deps.channels.load(
            key,
            lambda: channels_uc.webhook_channel(
                deps.runtime.uow, tenant, kind, channel_id, deps.box
            ),
        )
    return config


def require_type(request: Request, *accepted: str) -> str:
    """The request's media type if it is one of `accepted`, else 415."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in accepted:
        raise UnsupportedMediaType(f"expected {' or '.join(accepted)}")
    return request.headers.get("content-type", "")


def context(deps: IngestDeps, config: ChannelConfig, request: Request) -> Context:
    """Normalisation context of a channel."""
    return deps.context(
        config.tenant_id, request=request, region=config.region, languages=config.languages
    )


def answer(accepted: list[Accepted], batch: Batch) -> Response:
    """200 with what this delivery added (duplicates are success for the provider too)."""
    return JSONResponse(
        {
            "accepted": sum(a.created for a in accepted),
            "duplicates": sum(not a.created for a in accepted),
            "rejected": len(batch.messages) - len(accepted),
            "receipts": len(batch.receipts),
            "message_ids": [a.message_id for a in accepted],
        }
    )


def twiml() -> Response:
    """An empty TwiML answer (Twilio sends no reply from it)."""
    return Response(TWIML_EMPTY, media_type="text/xml")
