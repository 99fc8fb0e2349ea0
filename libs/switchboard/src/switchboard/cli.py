"""The `switchboard` command: run embedded mode, migrate, tenants, tokens, keys, DLQ tools."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from sbkit.settings import KitSettings

app = typer.Typer(help="Switchboard: omnichannel customer service.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens.", no_args_is_help=True)
keys_app = typer.Typer(help="Token signing keys.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter topics.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(token_app, name="token")
app.add_typer(keys_app, name="keys")
app.add_typer(dlq_app, name="dlq")

SERVICES = ("ingest", "crm", "routing", "analytics", "notifier")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def run(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run all five services in one process (embedded mode)."""
    from sbkit.serve import serve
    from switchboard.embedded import create_app

    settings = KitSettings(service="switchboard", host=host, port=port)
    serve(lambda: create_app(settings), settings)


@app.command()
def migrate(services: Annotated[list[str] | None, typer.Argument()] = None) -> None:
    """Apply database migrations of the named services (default: all)."""
    import importlib

    async def go() -> None:
        for name in services or SERVICES:
            if name not in SERVICES:
                _fail(f"unknown service {name}")
            module = importlib.import_module(f"{name}.bootstrap")
            service = module.bootstrap()
            await service.runtime.migrate()
            await service.runtime.engine.dispose()
            typer.echo(f"{name}: migrated")

    asyncio.run(go())


@tenant_app.command("create")
def tenant_create(name: str) -> None:
    """Register a tenant; prints its id."""
    from switchboard.control import ControlError, control_plane

    async def go() -> str:
        async with control_plane() as plane:
            return await plane.create_tenant(name)

    try:
        typer.echo(asyncio.run(go()))
    except ControlError as exc:
        _fail(str(exc))


@token_app.command("mint")
def token_mint(
    tenant: Annotated[str, typer.Option(help="Tenant name or id.")],
    scope: Annotated[list[str], typer.Option(help="Scope, e.g. messages:write (repeatable).")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 30 * 86400,
    show_id: Annotated[bool, typer.Option(help="Also print the token id (to stderr).")] = False,
) -> None:
    """Mint a bearer token bound to one tenant and scopes; prints the token."""
    from switchboard.control import ControlError, control_plane

    async def go() -> tuple[str, str]:
        async with control_plane() as plane:
            return await plane.mint_token(tenant, scope, ttl)

    try:
        jti, token = asyncio.run(go())
    except ControlError as exc:
        _fail(str(exc))
        return
    if show_id:
        typer.echo(f"token id: {jti}", err=True)
    typer.echo(token)


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token (by id) in every service."""
    from switchboard.control import ControlError, control_plane

    async def go() -> None:
        async with control_plane() as plane:
            await plane.revoke_token(token_id)

    try:
        asyncio.run(go())
    except ControlError as exc:
        _fail(str(exc))
    typer.echo(f"revoked {token_id}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Create a new signing key; older keys keep verifying until removed."""
    from pathlib import Path

    from sbkit.auth import rotate

    typer.echo(rotate(Path(KitSettings().auth_key_dir)))


@dlq_app.command("list")
def dlq_list(topic: str) -> None:
    """Print each dead-lettered record of TOPIC with why it failed (one JSON object a line)."""
    from sbkit.bus.dlq import describe
    from sbkit.wiring import build_bus

    async def go() -> None:
        bus = build_bus(KitSettings(service="cli"), background_connect=False)
        dlq = topic if topic.endswith(".dlq") else f"{topic}.dlq"
        for record in await bus.read_topic(dlq):
            typer.echo(json.dumps(describe(record)))

    asyncio.run(go())


@dlq_app.command("replay")
def dlq_replay(topic: str) -> None:
    """Republish TOPIC's dead-lettered records that were not replayed before."""
    from sbkit.bus.dlq import replay
    from sbkit.wiring import build_bus

    count = asyncio.run(
        replay(build_bus(KitSettings(service="cli"), background_connect=False), topic)
    )
    typer.echo(f"replayed {count}")


def main() -> None:
    """Console entry point."""
    app()
