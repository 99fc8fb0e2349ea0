"""Generic API channel: `POST /v1/messages` (idempotent) and `GET /v1/messages/{id}`."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ingest.domain.model import InboundMessage, RawSender
from ingest.entrypoints.deps import IngestDeps
from ingest.entrypoints.routing import IngestRoute, as_json, problem_statuses
from ingest.service_layer import messages as uc
from sbcontracts.events.common import Channel, HandleKind, Instant
from sbcontracts.events.ingest import Attachment, ThreadRefs
from sbkit.auth import Principal, requires
from sbkit.problems import error_responses


class SenderIn(BaseModel):
    """Who wrote: a handle as the caller knows it (normalised by ingest)."""

    model_config = ConfigDict(extra="forbid")
    kind: HandleKind
    value: str = Field(min_length=1, max_length=320)
    scope: str | None = Field(default=None, max_length=200)


class MessageIn(BaseModel):
    """A message from web chat or a custom adapter."""

    model_config = ConfigDict(extra="forbid")
    channel: Literal["api", "webchat"] = "api"
    external_id: str = Field(min_length=1, max_length=300, description="Your id: dedupe key")
    sender: SenderIn
    display_name: str | None = Field(default=None, max_length=300)
    inbox: str | None = Field(default=None, max_length=320)
    subject: str | None = Field(default=None, max_length=998)
    text: str = Field(default="", max_length=100_000)
    html: str | None = Field(default=None, max_length=1_000_000)
    sent_at: Instant | None = None
    conversation_id: str | None = Field(default=None, max_length=300)
    attachments: list[Attachment] = Field(default_factory=list, max_length=100)
    language: str | None = Field(default=None, max_length=8)
    region: str | None = Field(
        default=None, pattern="^[A-Za-z]{2}$", description="Default region for national phones"
    )


class MessageAccepted(BaseModel):
    """The answer to an accepted message."""

    message_id: str
    duplicate: bool


def to_inbound(body: MessageIn) -> InboundMessage:
    """The provider-agnostic message of an API request."""
    return InboundMessage(
        channel=Channel(body.channel),
        provider=body.channel,
        provider_message_id=body.external_id,
        sender=RawSender(body.sender.kind, body.sender.value, body.sender.scope),
        provider_timestamp=body.sent_at,
        display_name=body.display_name,
        inbox=body.inbox,
        thread=ThreadRefs(conversation_id=body.conversation_id),
        subject=body.subject,
        text=body.text,
        html=body.html,
        attachments=tuple(body.attachments),
        language=body.language,
    )


def messages_router(deps: IngestDeps) -> APIRouter:
    """Routes of the generic API channel."""
    router = APIRouter(tags=["messages"], route_class=IngestRoute)

    @router.post(
        "/v1/messages",
        status_code=201,
        response_model=MessageAccepted,
        responses={200: {"model": MessageAccepted}, **error_responses(*problem_statuses(422))},
    )
    async def post_message(
        body: MessageIn,
        request: Request,
        principal: Principal = requires("messages:write"),
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Response:
        """Accept a message once: same external id or Idempotency-Key → same message id, 200."""
        digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
        ctx = deps.context(principal.tenant_id, request=request, region=body.region)
        accepted = await uc.accept_api_message(
            deps.runtime.uow,
            ctx,
            to_inbound(body),
            idempotency=(idempotency_key, digest) if idempotency_key else None,
        )
        payload = {"message_id": accepted.message_id, "duplicate": not accepted.created}
        location = {"Location": f"/v1/messages/{accepted.message_id}"}
        return as_json(payload, 201 if accepted.created else 200, location)

    @router.get(
        "/v1/messages/{message_id}",
        responses=error_responses(*problem_statuses(404)),
    )
    async def get_message(
        message_id: str, principal: Principal = requires("messages:read")
    ) -> dict[str, Any]:
        """The normalised message (`message.received` payload)."""
        return await uc.get_message(deps.runtime.uow, principal.tenant_id, message_id)

    return router


__all__ = ["MessageIn", "messages_router"]
