"""Erasure tombstones are keyed: a guessed phone number cannot be tested against them."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from crm.adapters import orm
from crm.bootstrap import bootstrap
from crm.config import CrmSettings
from sbcontracts.catalog import decode
from sbcontracts.events.common import Channel, HandleKind
from sbcontracts.topics import CUSTOMERS
from sbkit.bus.local import LocalBus
from tests.unit.crm.conftest import (
    TENANT,
    Api,
    count,
    deliver,
    eventually,
    message,
    settings_for,
)

PHONE = "+48601234567"


async def _erase_the_phone_customer(api: Api) -> None:
    await deliver(api.service, message(PHONE, kind=HandleKind.PHONE, channel=Channel.SMS))
    found = (await api.call("GET", "/v1/customers", params={"phone": PHONE})).json()
    assert (await api.call("DELETE", f"/v1/customers/{found[0]['id']}")).status_code == 200


async def _tombstones(api: Api) -> set[str]:
    async with api.service.runtime.uow() as uow:
        return set((await uow.session.execute(select(orm.tombstones.c.handle_hash))).scalars())


def _guess(number: str, secret: bytes | None = None) -> str:
    message = f"{TENANT}\x00phone:{number}".encode()
    if secret is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


async def test_tombstones_are_hmacs_under_the_configured_secret(api: Api) -> None:
    await _erase_the_phone_customer(api)
    stored = await _tombstones(api)
    settings = api.service.runtime.settings
    assert isinstance(settings, CrmSettings)  # the runtime holds crm's own settings
    secret = settings.tombstone_secret()
    assert _guess(PHONE, secret) in stored
    dictionary = {_guess(f"+486012345{n:02d}") for n in range(100)}  # PHONE is in it
    assert not dictionary & stored  # an attacker without the secret matches nothing
    bus = api.service.runtime.bus
    assert isinstance(bus, LocalBus)

    async def erased() -> list[Any]:
        events = [decode(r.value) for r in bus.read_all(CUSTOMERS.name)]
        return [e for e in events if e.type.endswith("erased")]

    await eventually(erased)
    assert set((await erased())[0].data.handle_hashes) == stored  # no plain hash there either


async def test_a_secret_from_the_settings_keys_the_tombstones(tmp_path: Path) -> None:
    secret = "a-long-deployment-secret-from-the-vault"
    settings = settings_for(tmp_path, crm_tombstone_secret=secret)
    assert settings.tombstone_secret() == secret.encode()
    assert not (tmp_path / "keys" / "crm-tombstone.secret").exists()  # nothing generated


async def test_a_generated_secret_is_private_and_survives_a_restart(
    api: Api, tmp_path: Path
) -> None:
    await _erase_the_phone_customer(api)
    path = tmp_path / "keys" / "crm-tombstone.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    restarted = bootstrap(settings_for(tmp_path), bus=LocalBus(":memory:"))
    old = message(PHONE, kind=HandleKind.PHONE, channel=Channel.WHATSAPP, minutes=5)
    await deliver(restarted, old)  # a redelivered message from before the erasure
    await restarted.runtime.stop()
    assert await count(api.service, orm.identities) == 0  # the person did not come back


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="crm_tombstone_secret"):
        CrmSettings(crm_tombstone_secret="short", auth_key_dir=str(tmp_path))
