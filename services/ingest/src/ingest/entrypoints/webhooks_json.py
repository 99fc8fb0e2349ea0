"""JSON provider webhooks: WhatsApp Cloud API, Messenger (with the GET handshake) and Telegram."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse

from ingest.domain.channels import ChannelKind
from ingest.domain.model import Batch
from ingest.domain.providers.meta import parse_messenger, parse_whatsapp
from ingest.domain.providers.telegram import parse_telegram
from ingest.domain.signatures import verify_hub_signature, verify_secret_token
from ingest.entrypoints.deps import IngestDeps
from ingest.entrypoints.routing import IngestRoute, problem_statuses
from ingest.entrypoints.webhooks_common import answer, context, require_type, webhook_channel
from ingest.service_layer.errors import WrongVerifyToken
from ingest.service_layer.intake import accept_batch
from sbkit.problems import error_responses

_ERRORS = error_responses(*problem_statuses(404, 415))
_META = {ChannelKind.WHATSAPP: parse_whatsapp, ChannelKind.MESSENGER: parse_messenger}


def _meta_routes(router: APIRouter, deps: IngestDeps, kind: ChannelKind) -> None:
    """The GET handshake and the signed POST of one Meta product."""
    path = f"/v1/webhooks/{{tenant}}/{kind.value}/{{channel_id}}"
    parse = _META[kind]

    @router.get(path, responses=_ERRORS, name=f"{kind.value}_handshake")
    async def handshake(
        tenant: str,
        channel_id: str,
        mode: str = Query("", alias="hub.mode", max_length=50),
        token: str = Query("", alias="hub.verify_token", max_length=500),
        challenge: str = Query("", alias="hub.challenge", max_length=500),
    ) -> Response:
        """Meta's subscription handshake: echo hub.challenge when the verify token matches."""
        config = await webhook_channel(deps, tenant, kind, channel_id)
        expected = config.secret("verify_token").encode()
        if mode != "subscribe" or not expected or not hmac.compare_digest(expected, token.encode()):
            raise WrongVerifyToken("hub.verify_token does not match")
        return PlainTextResponse(challenge)

    @router.post(path, responses=_ERRORS, name=f"{kind.value}_webhook")
    async def receive(tenant: str, channel_id: str, request: Request) -> Response:
        """A signed Meta webhook (X-Hub-Signature-256 over the raw body), every item of it."""
        config = await webhook_channel(deps, tenant, kind, channel_id)
        require_type(request, "application/json")
        raw = await request.body()
        signature = request.headers.get("x-hub-signature-256")
        verify_hub_signature(config.secret("app_secret"), raw, signature)
        deps.limiter.check(tenant)  # after authentication: forged floods cannot drain the bucket
        batch = parse(raw)
        accepted = await accept_batch(deps.intake, context(deps, config, request), batch)
        return answer(accepted, batch)


def json_webhooks_router(deps: IngestDeps) -> APIRouter:
    """Routes of the JSON webhooks."""
    router = APIRouter(tags=["webhooks"], route_class=IngestRoute)
    for kind in _META:
        _meta_routes(router, deps, kind)

    @router.post("/v1/webhooks/{tenant}/telegram/{channel_id}", responses=_ERRORS)
    async def telegram(tenant: str, channel_id: str, request: Request) -> Response:
        """A Telegram update (X-Telegram-Bot-Api-Secret-Token); non-message updates are ignored."""
        config = await webhook_channel(deps, tenant, ChannelKind.TELEGRAM, channel_id)
        require_type(request, "application/json")
        raw = await request.body()
        verify_secret_token(
            config.secret("secret_token"), request.headers.get("x-telegram-bot-api-secret-token")
        )
        deps.limiter.check(tenant)
        bot_id = str(config.settings.get("bot_id") or config.id)
        _, message = parse_telegram(raw, bot_id=bot_id)
        batch = Batch(messages=[message] if message else [])
        accepted = await accept_batch(deps.intake, context(deps, config, request), batch)
        return answer(accepted, batch)

    return router
