"""Bearer tokens: Ed25519-signed JWTs bound to one tenant and scopes, verified locally everywhere.

Services hold only public keys (by key id), so any of them can verify without calling another
and none can mint. Rotation: add a key, make it current, drop the old one after the longest
token lifetime. Revocation: revoked token ids arrive on the control topic (see control.py).
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request

from sbkit.problems import Forbidden, Unauthorized
from sbkit.ratelimit import TenantRateLimiter

ALGORITHM = "EdDSA"


@dataclass
class Keyring:
    """Public keys by id, the private key of the current id where this process may sign."""

    public: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    private: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    current: str | None = None

    @classmethod
    def load(cls, key_dir: str | Path, public_pems: dict[str, str] | None = None) -> Keyring:
        """Keys from PEMs given in settings, else from the key folder (created on first use)."""
        ring = cls()
        for kid, pem in (public_pems or {}).items():
            ring.public[kid] = _public(pem.encode())
        if ring.public:
            return ring
        folder = Path(key_dir)
        if not (folder / "current").exists():
            rotate(folder)
        for pub in folder.glob("*.pub.pem"):
            kid = pub.name.removesuffix(".pub.pem")
            ring.public[kid] = _public(pub.read_bytes())
            priv = folder / f"{kid}.key.pem"
            if priv.exists():
                key = serialization.load_pem_private_key(priv.read_bytes(), password=None)
                assert isinstance(key, Ed25519PrivateKey)
                ring.private[kid] = key
        ring.current = (folder / "current").read_text().strip()
        return ring


def _public(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("auth keys must be Ed25519")
    return key


def rotate(folder: Path) -> str:
    """Create a new signing key and make it current; older keys keep verifying."""
    folder.mkdir(parents=True, exist_ok=True)
    kid = datetime.now(UTC).strftime("%Y%m%d") + "-" + secrets.token_hex(3)
    key = Ed25519PrivateKey.generate()
    priv = folder / f"{kid}.key.pem"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    priv.chmod(0o600)
    (folder / f"{kid}.pub.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (folder / "current").write_text(kid + "\n")
    return kid


@dataclass(frozen=True)
class Principal:
    """Who is calling: one tenant, a set of scopes, the token's id."""

    tenant_id: str
    scopes: frozenset[str]
    token_id: str

    def allows(self, scope: str) -> bool:
        """Whether the token grants `scope` (`resource:*` grants every action on a resource)."""
        resource = scope.split(":", 1)[0]
        return scope in self.scopes or f"{resource}:*" in self.scopes or "*" in self.scopes


def mint(
    ring: Keyring, *, tenant_id: str, scopes: list[str], ttl_s: int, issuer: str = "switchboard"
) -> tuple[str, str]:
    """Sign a token; returns (token id, token)."""
    if ring.current is None or ring.current not in ring.private:
        raise RuntimeError("no private signing key available")
    jti = uuid.uuid4().hex
    now = int(time.time())
    claims = {
        "iss": issuer,
        "tid": tenant_id,
        "scp": sorted(scopes),
        "jti": jti,
        "iat": now,
        "exp": now + ttl_s,
    }
    token = jwt.encode(claims, ring.private[ring.current], ALGORITHM, headers={"kid": ring.current})
    return jti, token


class TokenVerifier:
    """Verifies tokens with local keys and a local revocation set.

    A token whose signature was verified is remembered (by its exact text) until it expires:
    PyJWT's decode and the Ed25519 check were about a quarter of the CPU of a one-query read
    (crm's card), for the same few tokens again and again. Expiry, revocation and the signing
    key being still known are checked on every request, remembered or not.
    """

    MAX_REMEMBERED = 10_000

    def __init__(self, ring: Keyring, *, issuer: str = "switchboard") -> None:
        self._ring = ring
        self._issuer = issuer
        self.revoked: set[str] = set()
        self._verified: dict[str, tuple[Principal, float, str]] = {}  # token -> (p, exp, kid)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token, or Unauthorized."""
        known = self._verified.get(token)
        if known is not None:
            principal, expires, kid = known
            if (
                time.time() < expires
                and kid in self._ring.public
                and principal.token_id not in self.revoked
            ):
                return principal
            del self._verified[token]  # the full check below says why it is refused
        principal, expires, kid = self._check(token)
        if len(self._verified) >= self.MAX_REMEMBERED:
            self._verified.clear()
        self._verified[token] = (principal, expires, kid)
        return principal

    def _check(self, token: str) -> tuple[Principal, float, str]:
        """Signature, issuer, expiry, revocation and claims; (principal, exp, kid)."""
        try:
            kid = str(jwt.get_unverified_header(token).get("kid"))
            key = self._ring.public.get(kid)
            if key is None:
                raise Unauthorized("unknown signing key")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={"require": ["exp", "iat", "jti", "tid", "scp"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed or invalid token") from exc
        if claims["jti"] in self.revoked:
            raise Unauthorized("token revoked")
        scopes = claims["scp"]
        if not isinstance(scopes, list) or not isinstance(claims["tid"], str):
            raise Unauthorized("malformed token claims")
        principal = Principal(claims["tid"], frozenset(map(str, scopes)), str(claims["jti"]))
        return principal, float(claims["exp"]), kid


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    return token.strip()


def requires(scope: str) -> Any:
    """A FastAPI dependency: the caller's principal, if its token grants `scope` and its
    tenant is within its request rate (`app.state.rate_limiter`, 429 otherwise).

    Typed `Any` so a route can declare `principal: Principal = requires("x:read")`.
    """

    # async, so FastAPI runs it on the event loop: a sync dependency costs every request a hop
    # to a worker thread and back (the check itself is an Ed25519 verify, ~0.1 ms)
    async def dependency(request: Request) -> Principal:
        verifier: TokenVerifier = request.app.state.verifier
        principal = verifier.verify(_bearer(request))
        if not principal.allows(scope):
            raise Forbidden(f"token lacks scope {scope}")
        limiter: TenantRateLimiter | None = getattr(request.app.state, "rate_limiter", None)
        if limiter is not None:  # after authentication: forged tokens cannot drain a bucket
            limiter.check(principal.tenant_id)
        return principal

    return Depends(dependency)


def ensure_tenant(principal: Principal, tenant_id: str) -> None:
    """Refuse a request that names a tenant other than the token's."""
    if principal.tenant_id != tenant_id:
        raise Forbidden("token is bound to another tenant")
