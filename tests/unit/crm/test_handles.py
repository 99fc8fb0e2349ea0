"""Handles normalise so one person's email or phone always has one key."""

from __future__ import annotations

import hashlib

import pytest

from crm.domain.handles import HandleKey, InvalidHandle, normalise, parse_handle


@pytest.mark.parametrize(
    ("kind", "raw", "value"),
    [
        ("email", " Anna.Kowalska@Example.PL ", "anna.kowalska@example.pl"),
        ("phone", "+48 601 234 567", "+48601234567"),
        ("phone", "+48-601-234-567", "+48601234567"),
    ],
)
def test_spellings_of_one_handle_normalise_to_one_value(kind: str, raw: str, value: str) -> None:
    assert normalise(kind, raw).value == value


@pytest.mark.parametrize(
    ("kind", "raw"), [("email", "anna@"), ("email", "a b@x.pl"), ("phone", "12")]
)
def test_invalid_handles_name_the_field(kind: str, raw: str) -> None:
    with pytest.raises(InvalidHandle) as err:
        normalise(kind, raw, field=kind)
    assert err.value.field == kind


def test_scoped_messenger_ids_parse_and_differ_by_scope() -> None:
    a = parse_handle("messenger:page1:123")
    assert a == HandleKey("messenger", "123", "page1") and a != parse_handle("messenger:page2:123")
    k = b"s" * 32
    assert (
        a.hashed("t1", secret=k) != a.hashed("t2", secret=k) and len(a.hashed("t1", secret=k)) == 64
    )


def test_tombstone_hash_depends_on_the_secret_and_is_no_plain_hash() -> None:
    phone = HandleKey("phone", "+48601234567")
    keyed = phone.hashed("t1", secret=b"a" * 32)
    assert keyed == phone.hashed("t1", secret=b"a" * 32)  # stable: tombstones keep matching
    assert keyed != phone.hashed("t1", secret=b"b" * 32)
    plain = hashlib.sha256(f"t1\x00{phone.key()}".encode()).hexdigest()
    assert keyed != plain  # what a dictionary of phone numbers could be checked against
