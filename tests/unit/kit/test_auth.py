"""Bearer tokens on a real app: 401/403 problems, scopes, tenant binding, rotation, revocation."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, FastAPI

from sbkit import control
from sbkit.auth import (
    ALGORITHM,
    Keyring,
    Principal,
    TokenVerifier,
    ensure_tenant,
    mint,
    requires,
    rotate,
)
from sbkit.bus.local import LocalBus
from sbkit.problems import PROBLEM_JSON, Unauthorized
from sbkit.settings import KitSettings
from sbkit.web import create_app
from switchboard.control import ControlPlane


def probe_router() -> APIRouter:
    router = APIRouter()

    @router.get("/v1/probe")
    async def probe(principal: Annotated[Principal, requires("probe:read")]) -> dict[str, str]:
        return {"tenant": principal.tenant_id}

    @router.get("/v1/tenants/{tenant}/probe")
    async def tenant_probe(
        tenant: str, principal: Annotated[Principal, requires("probe:read")]
    ) -> dict[str, str]:
        ensure_tenant(principal, tenant)
        return {"tenant": principal.tenant_id}

    return router


def probe_app(verifier: TokenVerifier, bus: LocalBus | None = None) -> FastAPI:
    return create_app(
        title="probe",
        runtimes=[],
        routers=[probe_router()],
        bus=bus or LocalBus(":memory:", poll_interval_s=0.02),
        verifier=verifier,
    )


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client talking to the app while its lifespan (bus, revocation reader) runs."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://probe") as client,
    ):
        yield client


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def ring(key_dir: Path) -> Keyring:
    return Keyring.load(key_dir)


@pytest.fixture
async def client(ring: Keyring) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(probe_app(TokenVerifier(ring))) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(
    ring: Keyring, tenant: str = "acme", scopes: tuple[str, ...] = ("probe:read",), ttl_s: int = 600
) -> str:
    return mint(ring, tenant_id=tenant, scopes=list(scopes), ttl_s=ttl_s)[1]


def claims(tenant: str = "acme") -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "switchboard",
        "tid": tenant,
        "scp": ["probe:read"],
        "jti": "x1",
        "iat": now,
        "exp": now + 600,
    }


def assert_problem(
    response: httpx.Response, status: int, detail: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str) and body["title"]
    if detail is not None:
        assert body["detail"] == detail
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    return body


async def test_request_without_authorization_is_401_with_bearer_challenge(
    client: httpx.AsyncClient,
) -> None:
    body = assert_problem(await client.get("/v1/probe"), 401, "missing bearer token")
    assert body["title"] == "Unauthorized"


@pytest.mark.parametrize("header", ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer   ", "Token abc"])
async def test_non_bearer_authorization_is_401(client: httpx.AsyncClient, header: str) -> None:
    assert_problem(
        await client.get("/v1/probe", headers={"Authorization": header}),
        401,
        "missing bearer token",
    )


async def test_garbage_token_is_401(client: httpx.AsyncClient) -> None:
    assert_problem(
        await client.get("/v1/probe", headers=bearer("not.a-jwt")),
        401,
        "malformed or invalid token",
    )


async def test_unsigned_alg_none_token_is_401(client: httpx.AsyncClient, ring: Keyring) -> None:
    # alg none takes no key; PyJWT's stubs want a str, and it reads "" as none
    forged = jwt.encode(claims(), "", algorithm="none", headers={"kid": ring.current})
    assert_problem(
        await client.get("/v1/probe", headers=bearer(forged)), 401, "malformed or invalid token"
    )


async def test_hs256_token_with_a_known_kid_is_401(
    client: httpx.AsyncClient, ring: Keyring
) -> None:
    forged = jwt.encode(
        claims(),
        "a-shared-secret-long-enough-for-hs256!",
        algorithm="HS256",
        headers={"kid": ring.current},
    )
    assert_problem(
        await client.get("/v1/probe", headers=bearer(forged)), 401, "malformed or invalid token"
    )


async def test_expired_token_is_401(client: httpx.AsyncClient, ring: Keyring) -> None:
    expired = token_for(ring, ttl_s=-30)
    assert_problem(await client.get("/v1/probe", headers=bearer(expired)), 401, "token expired")


async def test_token_signed_by_a_foreign_key_is_401(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    foreign = Keyring.load(tmp_path / "other-keys")
    assert_problem(
        await client.get("/v1/probe", headers=bearer(token_for(foreign))),
        401,
        "unknown signing key",
    )


async def test_token_signed_by_a_foreign_key_claiming_our_kid_is_401(
    client: httpx.AsyncClient, ring: Keyring
) -> None:
    impostor = Ed25519PrivateKey.generate()
    forged = jwt.encode(claims(), impostor, ALGORITHM, headers={"kid": ring.current})
    assert_problem(
        await client.get("/v1/probe", headers=bearer(forged)), 401, "malformed or invalid token"
    )


async def test_token_of_another_issuer_is_401(client: httpx.AsyncClient, ring: Keyring) -> None:
    other = mint(ring, tenant_id="acme", scopes=["probe:read"], ttl_s=600, issuer="elsewhere")[1]
    assert_problem(await client.get("/v1/probe", headers=bearer(other)), 401)


async def test_token_without_the_scope_is_403(client: httpx.AsyncClient, ring: Keyring) -> None:
    token = token_for(ring, scopes=("messages:write", "probe:write"))
    body = assert_problem(
        await client.get("/v1/probe", headers=bearer(token)), 403, "token lacks scope probe:read"
    )
    assert body["title"] == "Forbidden"


async def test_resource_wildcard_scope_grants_each_action(
    client: httpx.AsyncClient, ring: Keyring
) -> None:
    response = await client.get("/v1/probe", headers=bearer(token_for(ring, scopes=("probe:*",))))
    assert response.status_code == 200
    assert response.json() == {"tenant": "acme"}


async def test_wildcard_of_another_resource_does_not_grant(
    client: httpx.AsyncClient, ring: Keyring
) -> None:
    token = token_for(ring, scopes=("messages:*",))
    assert_problem(await client.get("/v1/probe", headers=bearer(token)), 403)


async def test_token_of_one_tenant_cannot_reach_another_tenant(
    client: httpx.AsyncClient, ring: Keyring
) -> None:
    token = token_for(ring, tenant="tenant-a")
    assert_problem(
        await client.get("/v1/tenants/tenant-b/probe", headers=bearer(token)),
        403,
        "token is bound to another tenant",
    )


async def test_valid_token_reaches_its_own_tenant(client: httpx.AsyncClient, ring: Keyring) -> None:
    token = token_for(ring, tenant="tenant-a")
    response = await client.get("/v1/tenants/tenant-a/probe", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"tenant": "tenant-a"}


async def test_rotation_keeps_old_tokens_valid_until_the_old_key_is_removed(
    key_dir: Path, ring: Keyring
) -> None:
    old_kid = ring.current
    old = token_for(ring)
    new_kid = rotate(key_dir)
    rotated = Keyring.load(key_dir)
    new = token_for(rotated)
    assert new_kid != old_kid and rotated.current == new_kid
    assert jwt.get_unverified_header(new)["kid"] == new_kid
    assert jwt.get_unverified_header(old)["kid"] == old_kid
    async with serving(probe_app(TokenVerifier(rotated))) as c:
        assert (await c.get("/v1/probe", headers=bearer(old))).status_code == 200
        assert (await c.get("/v1/probe", headers=bearer(new))).status_code == 200

    (key_dir / f"{old_kid}.pub.pem").unlink()
    (key_dir / f"{old_kid}.key.pem").unlink()
    pruned = Keyring.load(key_dir)
    assert old_kid not in pruned.public
    async with serving(probe_app(TokenVerifier(pruned))) as c:
        assert_problem(await c.get("/v1/probe", headers=bearer(old)), 401, "unknown signing key")
        assert (await c.get("/v1/probe", headers=bearer(new))).status_code == 200


async def wait_for_status(client: httpx.AsyncClient, token: str, status: int) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        response = await client.get("/v1/probe", headers=bearer(token))
        if response.status_code == status or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.05)


async def test_token_revoked_through_the_control_plane_is_refused(
    tmp_path: Path, key_dir: Path, ring: Keyring
) -> None:
    bus = LocalBus(":memory:", poll_interval_s=0.02)
    settings = KitSettings(
        service="control",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/control.db",
        auth_key_dir=str(key_dir),
    )
    plane = ControlPlane(settings, bus)
    async with plane.engine.begin() as conn:
        await conn.run_sync(control.metadata.create_all)
    try:
        async with serving(probe_app(TokenVerifier(ring), bus)) as c:
            tenant = await plane.create_tenant("acme")
            jti, token = await plane.mint_token(tenant, ["probe:read"], 600)
            _, other = await plane.mint_token(tenant, ["probe:read"], 600)
            assert (await c.get("/v1/probe", headers=bearer(token))).status_code == 200

            await plane.revoke_token(jti)

            assert_problem(await wait_for_status(c, token, 401), 401, "token revoked")
            assert (await c.get("/v1/probe", headers=bearer(other))).status_code == 200
    finally:
        await plane.engine.dispose()


async def test_revocation_published_before_start_is_honoured(ring: Keyring) -> None:
    """A process that starts later reads the whole control topic, so older revocations hold."""
    from sbcontracts.catalog import encode
    from sbcontracts.envelope import new_event
    from sbcontracts.events.control import TokenRevoked
    from sbcontracts.topics import CONTROL
    from sbkit.bus.ports import OutgoingRecord

    bus = LocalBus(":memory:", poll_interval_s=0.02)
    jti, token = mint(ring, tenant_id="acme", scopes=["probe:read"], ttl_s=600)
    event = new_event(TokenRevoked(token_id=jti, tenant_id="acme"), tenant_id="acme", source="test")
    await bus.publish([OutgoingRecord(topic=CONTROL.name, key="acme", value=encode(event))])
    async with serving(probe_app(TokenVerifier(ring), bus)) as c:
        assert_problem(await wait_for_status(c, token, 401), 401, "token revoked")


def test_the_scope_check_runs_on_the_event_loop_not_in_a_worker_thread() -> None:
    # FastAPI sends a sync dependency to its thread pool: a hop per request for a ~0.1 ms check
    assert inspect.iscoroutinefunction(requires("probe:read").dependency)


def test_a_verified_token_is_not_decoded_again(
    ring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(ring)
    jti, token = mint(ring, tenant_id="acme", scopes=["probe:read"], ttl_s=600)
    assert verifier.verify(token).token_id == jti

    def no_decode(*_: Any, **__: Any) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(jwt, "decode", no_decode)
    assert verifier.verify(token).token_id == jti


def test_a_remembered_token_is_refused_once_revoked_or_its_key_dropped(ring: Keyring) -> None:
    verifier = TokenVerifier(ring)
    jti, token = mint(ring, tenant_id="acme", scopes=["probe:read"], ttl_s=600)
    _, other = mint(ring, tenant_id="acme", scopes=["probe:read"], ttl_s=600)
    verifier.verify(token), verifier.verify(other)
    verifier.revoked.add(jti)
    with pytest.raises(Unauthorized, match="revoked"):
        verifier.verify(token)
    ring.public.clear()
    with pytest.raises(Unauthorized, match="unknown signing key"):
        verifier.verify(other)


def test_a_remembered_token_is_refused_once_expired(ring: Keyring) -> None:
    verifier = TokenVerifier(ring)
    _, token = mint(ring, tenant_id="acme", scopes=["probe:read"], ttl_s=1)
    verifier.verify(token)
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token)
