"""Channel configuration over REST: `/v1/channels` (secrets are write-only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ingest.domain.channels import ChannelConfig, ChannelKind
from ingest.entrypoints.deps import IngestDeps
from ingest.entrypoints.routing import IngestRoute, problem_statuses
from ingest.service_layer import channels as uc
from sbkit.auth import Principal, requires
from sbkit.problems import error_responses

_ID = Field(default=None, min_length=1, max_length=200)


class ChannelSettings(BaseModel):
    """Provider identifiers and normalisation defaults of a channel."""

    model_config = ConfigDict(extra="forbid")
    phone_number_id: str | None = _ID
    page_id: str | None = _ID
    bot_id: str | None = _ID
    account_sid: str | None = _ID
    phone_number: str | None = _ID
    inbox: str | None = Field(default=None, max_length=320)
    default_region: str | None = Field(default=None, pattern="^[A-Z]{2}$")
    languages: list[str] | None = Field(default=None, max_length=10)


class ChannelSecrets(BaseModel):
    """Webhook secrets: accepted here, never returned nor logged (SecretStr hides them)."""

    model_config = ConfigDict(extra="forbid")
    app_secret: SecretStr | None = None
    verify_token: SecretStr | None = None
    auth_token: SecretStr | None = None
    secret_token: SecretStr | None = None
    signing_key: SecretStr | None = None
    signing_secret: SecretStr | None = None

    def plain(self) -> dict[str, str]:
        """The secrets that were given, as plain strings (for storage only)."""
        return {k: v.get_secret_value() for k, v in self if v is not None and v.get_secret_value()}


class ChannelIn(BaseModel):
    """A channel to configure."""

    model_config = ConfigDict(extra="forbid")
    kind: ChannelKind
    name: str = Field(min_length=1, max_length=200)
    settings: ChannelSettings = ChannelSettings()
    secrets: ChannelSecrets = ChannelSecrets()


class ChannelPatch(BaseModel):
    """Changes to a channel: settings merged, given secrets replaced, others kept."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    settings: ChannelSettings = ChannelSettings()
    secrets: ChannelSecrets = ChannelSecrets()


class ChannelOut(BaseModel):
    """A channel as shown to its tenant: which secrets are set, never their values."""

    id: str
    kind: ChannelKind
    name: str
    settings: dict[str, Any]
    secrets_set: list[str]
    webhook_path: str


def render(config: ChannelConfig) -> ChannelOut:
    """The public view of a channel."""
    return ChannelOut(
        id=config.id,
        kind=config.kind,
        name=config.name,
        settings=config.settings,
        secrets_set=sorted(config.secrets),
        webhook_path=config.webhook_path(),
    )


def channels_router(deps: IngestDeps) -> APIRouter:
    """Routes of channel configuration."""
    router = APIRouter(tags=["channels"], route_class=IngestRoute)
    _write_routes(router, deps)
    _read_routes(router, deps)
    return router


def _write_routes(router: APIRouter, deps: IngestDeps) -> None:
    """Create and change channels."""
    new_uow = deps.runtime.uow

    @router.post("/v1/channels", status_code=201, responses=error_responses(*problem_statuses(422)))
    async def create(
        body: ChannelIn, response: Response, principal: Principal = requires("channels:write")
    ) -> ChannelOut:
        """Configure a channel; the answer holds its webhook path."""
        config = await uc.create_channel(
            new_uow,
            principal.tenant_id,
            kind=body.kind,
            name=body.name,
            settings=body.settings.model_dump(exclude_none=True),
            secrets=body.secrets.plain(),
            box=deps.box,
        )
        response.headers["Location"] = f"/v1/channels/{config.id}"
        return render(config)

    @router.patch("/v1/channels/{channel_id}", responses=error_responses(*problem_statuses(404)))
    async def patch(
        channel_id: str, body: ChannelPatch, principal: Principal = requires("channels:write")
    ) -> ChannelOut:
        """Change a channel (rotate a secret by sending only it)."""
        config = await uc.update_channel(
            new_uow,
            principal.tenant_id,
            channel_id,
            name=body.name,
            settings=body.settings.model_dump(exclude_none=True),
            secrets=body.secrets.plain(),
            box=deps.box,
        )
        deps.channels.clear()
        return render(config)


def _read_routes(router: APIRouter, deps: IngestDeps) -> None:
    """List and show channels (never their secrets)."""
    new_uow = deps.runtime.uow

    @router.get("/v1/channels", responses=error_responses(*problem_statuses()))
    async def list_all(principal: Principal = requires("channels:read")) -> list[ChannelOut]:
        """Every channel of the caller's tenant."""
        return [render(c) for c in await uc.list_channels(new_uow, principal.tenant_id, deps.box)]

    @router.get("/v1/channels/{channel_id}", responses=error_responses(*problem_statuses(404)))
    async def get_one(
        channel_id: str, principal: Principal = requires("channels:read")
    ) -> ChannelOut:
        """One channel of the caller's tenant."""
        return render(await uc.get_channel(new_uow, principal.tenant_id, channel_id, deps.box))
