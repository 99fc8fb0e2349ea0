"""Form and MIME webhooks: Twilio SMS and voice status, Mailgun inbound routes, raw RFC 5322 email."""

from __future__ import annotations

import hashlib
import time

from fastapi import APIRouter, Request, Response

from ingest.domain.channels import ChannelConfig, ChannelKind
from ingest.domain.model import Batch
from ingest.domain.providers.email_mime import parse_mime
from ingest.domain.providers.fields import load_flat_json, load_form
from ingest.domain.providers.mailgun import parse_mailgun, read_form
from ingest.domain.providers.twilio import parse_twilio_call, parse_twilio_message
from ingest.domain.signatures import (
    verify_body_hmac,
    verify_mailgun,
    verify_twilio,
    verify_twilio_body,
)
from ingest.entrypoints.deps import IngestDeps
from ingest.entrypoints.routing import IngestRoute, problem_statuses
from ingest.entrypoints.webhooks_common import answer, context, require_type, twiml, webhook_channel
from ingest.service_layer.intake import accept_batch, accept_signals, accept_with_nonce
from ingest.service_layer.signals import Signal
from sbkit.problems import error_responses

_ERRORS = error_responses(*problem_statuses(404, 415))
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
JSON = "application/json"


def signed_url(deps: IngestDeps, request: Request) -> str:
    """The URL Twilio signed: the public base URL when behind a proxy, else the request URL."""
    base = deps.settings.ingest_public_base_url
    if not base:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return base.rstrip("/") + request.url.path + query


def forms_webhooks_router(deps: IngestDeps) -> APIRouter:
    """Routes of the form and MIME webhooks."""
    router = APIRouter(tags=["webhooks"], route_class=IngestRoute)
    _twilio_routes(router, deps)
    _mail_routes(router, deps)
    return router


def _twilio_routes(router: APIRouter, deps: IngestDeps) -> None:
    """Twilio SMS and voice status webhooks (the signature covers URL and form parameters)."""

    async def twilio_params(
        request: Request, kind: ChannelKind, tenant: str, cid: str
    ) -> tuple[ChannelConfig, dict[str, str]]:
        config = await webhook_channel(deps, tenant, kind, cid)
        content_type = require_type(request, FORM, JSON)
        raw = await request.body()
        header = request.headers.get("x-twilio-signature")
        token, url = config.secret("auth_token"), signed_url(deps, request)
        if content_type.split(";")[0].strip().lower() == JSON:
            verify_twilio_body(token, url, raw, header)  # before parsing: only the hash is read
            params = load_flat_json(raw)
        else:
            params = load_form(raw)  # Twilio signs the form fields: split them, nothing more
            verify_twilio(token, url, params, header)
        deps.limiter.check(tenant)  # after authentication: forged floods cannot drain the bucket
        return config, params

    @router.post("/v1/webhooks/{tenant}/twilio_sms/{channel_id}", responses=_ERRORS)
    async def twilio_sms(tenant: str, channel_id: str, request: Request) -> Response:
        """Inbound SMS / WhatsApp-via-Twilio, or a MessageStatus callback (→ receipt)."""
        config, params = await twilio_params(request, ChannelKind.TWILIO_SMS, tenant, channel_id)
        batch = parse_twilio_message(params)
        await accept_batch(deps.intake, context(deps, config, request), batch)
        return twiml()

    @router.post("/v1/webhooks/{tenant}/twilio_voice/{channel_id}", responses=_ERRORS)
    async def twilio_voice(tenant: str, channel_id: str, request: Request) -> Response:
        """A voice status callback (ringing/in-progress/completed/...) → call events, once each."""
        config, params = await twilio_params(request, ChannelKind.TWILIO_VOICE, tenant, channel_id)
        sid, data = parse_twilio_call(params, region=config.region)
        if data is not None:
            signal = Signal("call", f"{sid}:{data.event_type}"[:400], data, sid)
            await accept_signals(deps.intake, context(deps, config, request), [signal])
        return twiml()


def _mail_routes(router: APIRouter, deps: IngestDeps) -> None:
    """Mailgun inbound routes and raw RFC 5322 posts."""
    new_uow = deps.runtime.uow

    @router.post("/v1/webhooks/{tenant}/mailgun/{channel_id}", responses=_ERRORS)
    async def mailgun(tenant: str, channel_id: str, request: Request) -> Response:
        """A Mailgun inbound route post: signed timestamp+token, 300 s window, tokens used once."""
        config = await webhook_channel(deps, tenant, ChannelKind.MAILGUN, channel_id)
        content_type = require_type(request, FORM, MULTIPART)
        raw = await request.body()
        fields, files = read_form(raw, content_type)
        verify_mailgun(
            config.secret("signing_key"),
            timestamp=fields.get("timestamp"),
            token=fields.get("token"),
            signature=fields.get("signature"),
            now=time.time(),
            window_s=deps.settings.ingest_replay_window_s,
        )
        deps.limiter.check(tenant)
        message = parse_mailgun(fields, files)
        batch = Batch(messages=[message])
        accepted = await accept_with_nonce(
            new_uow,
            context(deps, config, request),
            batch,
            nonce=fields["token"],
            body_hash=hashlib.sha256(raw).hexdigest(),
        )
        return answer(accepted, batch)

    @router.post("/v1/webhooks/{tenant}/email/{channel_id}", responses=_ERRORS)
    async def email(tenant: str, channel_id: str, request: Request) -> Response:
        """A raw RFC 5322 message (message/rfc822), signed with X-Switchboard-Signature-256."""
        config = await webhook_channel(deps, tenant, ChannelKind.EMAIL, channel_id)
        require_type(request, "message/rfc822")
        raw = await request.body()
        header = request.headers.get("x-switchboard-signature-256")
        verify_body_hmac(config.secret("signing_secret"), raw, header)
        deps.limiter.check(tenant)
        message = parse_mime(raw, inbox=config.settings.get("inbox"))
        batch = Batch([message])
        accepted = await accept_batch(deps.intake, context(deps, config, request), batch)
        return answer(accepted, batch)
