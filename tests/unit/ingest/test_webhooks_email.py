"""Inbound email: raw RFC 5322 MIME (charsets, QP/base64, RFC 2047) and Mailgun inbound routes."""

from __future__ import annotations

import hashlib
import hmac
import quopri
import time
from urllib.parse import urlencode

import pytest

from tests.unit.ingest import samples
from tests.unit.ingest.conftest import Harness, add_channel

SECRET = "mime-secret"
KEY = "mailgun-signing-key"


def _mime(subject: str, body_header: str, body: str, *, msg_id: str = "<a1@mail.example>") -> bytes:
    return (
        (
            "From: =?utf-8?q?Zofia_Ko=C5=82odziej?= <Zofia.Kolodziej@Example.COM>\r\n"
            "To: =?utf-8?q?Obs=C5=82uga?= <pomoc@sklep.pl>\r\n"
            f"Subject: {subject}\r\n"
            f"Message-ID: {msg_id}\r\n"
            "In-Reply-To: <prev@sklep.pl>\r\n"
            "References: <root@sklep.pl> <prev@sklep.pl>\r\n"
            "Date: Fri, 22 Nov 2024 09:15:00 +0100\r\n"
            "MIME-Version: 1.0\r\n"
            f"{body_header}\r\n\r\n{body}\r\n"
        ).encode("ascii", errors="strict")
        if body_header
        else b""
    )


async def _post(
    h: Harness, path: str, raw: bytes, secret: str = SECRET, ctype: str = "message/rfc822"
) -> int:
    sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    r = await h.client.post(
        path, content=raw, headers={"content-type": ctype, "x-switchboard-signature-256": sig}
    )
    return r.status_code


CASES = [
    (
        "pl",
        "iso-8859-2",
        "Content-Type: text/plain; charset=iso-8859-2\r\nContent-Transfer-Encoding: base64",
        "=?iso-8859-2?q?Gdzie_jest_moja_przesy=B3ka=3F?=",
        "Gdzie jest moja przesyłka?",
    ),
    (
        "ru",
        "koi8-r",
        "Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: base64",
        "=?koi8-r?b?8M/T2czLwQ==?=",
        "Посылка",
    ),
    (
        "ru",
        "windows-1251",
        "Content-Type: text/plain; charset=windows-1251\r\nContent-Transfer-Encoding: base64",
        "=?windows-1251?b?z+7x++vq4A==?=",
        "Посылка",
    ),
    (
        "pl",
        "windows-1250",
        "Content-Type: text/plain; charset=windows-1250\r\nContent-Transfer-Encoding: quoted-printable",
        "=?windows-1250?q?Zwrot_pieni=EAdzy?=",
        "Zwrot pieniędzy",
    ),
    (
        "ro",
        "iso-8859-16",
        "Content-Type: text/plain; charset=iso-8859-16\r\nContent-Transfer-Encoding: base64",
        "=?utf-8?b?Q29tYW5kxIMgw65udMOicnppYXTEgw==?=",
        "Comandă întârziată",
    ),
]


@pytest.mark.parametrize(("lang", "charset", "header", "subject", "decoded"), CASES)
async def test_raw_mime_legacy_charsets_and_encoded_headers(
    harness: Harness, lang: str, charset: str, header: str, subject: str, decoded: str
) -> None:
    path = await add_channel(harness, "email", {"signing_secret": SECRET})
    text = samples.TEXTS[lang] + "\r\n\r\n-- \r\nZofia K., +48 600 100 200"
    encoded = (
        quopri.encodestring(text.encode(charset)).decode()
        if "quoted-printable" in header
        else samples.b64(text, charset)
    )
    raw = _mime(subject, header, encoded)
    assert await _post(harness, path, raw) == 200
    data = (await harness.events())[0]["data"]
    assert data["subject"] == decoded and data["language"] == lang
    assert data["sender"] == {"kind": "email", "value": "zofia.kolodziej@example.com"}
    assert data["display_name"] == "Zofia Kołodziej" and data["inbox"] == "pomoc@sklep.pl"
    assert data["thread"] == {
        "message_id": "<a1@mail.example>",
        "in_reply_to": "<prev@sklep.pl>",
        "references": ["<root@sklep.pl>", "<prev@sklep.pl>"],
    }
    assert "Zofia K." in data["body"] and "Zofia K." not in data["text"]


async def test_multipart_alternative_qp_quotes_stripped_and_attachment_hashed(
    harness: Harness,
) -> None:
    path = await add_channel(harness, "email", {"signing_secret": SECRET})
    body = (
        "--outer\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n"
        "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Hello, the parcel arrived damaged, the box was completely crushed.\r\n\r\n"
        "On Thu, 21 Nov 2024 at 10:00, Shop <help@shop.example> wrote:\r\n> Your order has shipped.\r\n"
        "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello, the parcel arrived damaged.</p>\r\n"
        "--alt--\r\n"
        "--outer\r\nContent-Type: image/jpeg\r\n"
        'Content-Disposition: attachment; filename="=?utf-8?q?zdj=C4=99cie.jpg?="\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n/9j/4AAQSkZJRg==\r\n--outer--"
    )
    raw = _mime("Damaged", "Content-Type: multipart/mixed; boundary=outer", body)
    assert await _post(harness, path, raw) == 200
    data = (await harness.events())[0]["data"]
    assert data["text"] == "Hello, the parcel arrived damaged, the box was completely crushed."
    assert "Your order has shipped" in data["body"]
    attachment = data["attachments"][0]
    assert attachment["name"] == "zdjęcie.jpg" and attachment["content_type"] == "image/jpeg"
    assert attachment["sha256"] == hashlib.sha256(bytes.fromhex("ffd8ffe000104a464946")).hexdigest()


async def test_html_only_email_is_converted_to_text(harness: Harness) -> None:
    path = await add_channel(harness, "email", {"signing_secret": SECRET})
    html = (
        "<html><body><p>Bună ziua,</p><p>comanda mea <b>nu a ajuns</b> încă.</p>"
        "<style>p{}</style></body></html>"
    )
    raw = _mime(
        "x",
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64",
        samples.b64(html, "utf-8"),
    )
    assert await _post(harness, path, raw) == 200
    data = (await harness.events())[0]["data"]
    assert data["text"] == "Bună ziua,\n\ncomanda mea nu a ajuns încă."


async def test_email_duplicate_bad_signature_malformed_wrong_type(harness: Harness) -> None:
    path = await add_channel(harness, "email", {"signing_secret": SECRET})
    raw = _mime("Hi", "Content-Type: text/plain", samples.TEXTS["en"])
    assert await _post(harness, path, raw) == 200
    assert await _post(harness, path, raw) == 200
    assert await _post(harness, path, raw + b"x", secret="bad") == 401
    assert await _post(harness, path, b"no headers at all") == 400
    assert await _post(harness, path, raw, ctype="text/plain") == 415
    assert await _post(harness, path.replace("/acme/", "/globex/"), raw) == 404
    assert len(await harness.events()) == 1


def _mailgun(
    token: str, *, ts: float | None = None, key: str = KEY, over: dict[str, str] | None = None
) -> dict[str, str]:
    stamp = str(int(ts if ts is not None else time.time()))
    fields = {
        "recipient": "pomoc@sklep.pl",
        "sender": "anna@example.pl",
        "from": "Anna Nowak <Anna@Example.pl>",
        "subject": "Zwrot",
        "body-plain": samples.TEXTS["pl"],
        "stripped-text": samples.TEXTS["pl"],
        "Message-Id": "<mg-1@example.pl>",
        "timestamp": stamp,
        "token": token,
        "signature": samples.mailgun_signature(key, stamp, token),
    }
    return fields | (over or {})


async def _mg(h: Harness, path: str, fields: dict[str, str]) -> int:
    r = await h.client.post(
        path,
        content=urlencode(fields),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    return r.status_code


async def test_mailgun_signed_post_accepted_once(harness: Harness) -> None:
    path = await add_channel(harness, "mailgun", {"signing_key": KEY})
    fields = _mailgun("t" * 50)
    assert await _mg(harness, path, fields) == 200
    assert await _mg(harness, path, fields) == 200  # a retry of the same post
    data = [e["data"] for e in await harness.events()]
    assert len(data) == 1 and data[0]["sender"]["value"] == "anna@example.pl"
    assert data[0]["provider"] == "mailgun" and data[0]["language"] == "pl"


async def test_mailgun_stale_forged_and_replayed_tokens_refused(harness: Harness) -> None:
    path = await add_channel(harness, "mailgun", {"signing_key": KEY})
    assert await _mg(harness, path, _mailgun("a" * 50, ts=time.time() - 301)) == 401
    assert await _mg(harness, path, _mailgun("b" * 50, key="forged")) == 401
    assert await _mg(harness, path, _mailgun("c" * 50)) == 200
    replay = _mailgun("c" * 50, over={"Message-Id": "<other@x>", "body-plain": "pay here"})
    assert await _mg(harness, path, replay) == 401
    assert len(await harness.events()) == 1


async def test_mailgun_sender_with_deeply_nested_comments_is_a_400_problem(
    harness: Harness,
) -> None:
    """A fuzz finding: email.utils.parseaddr recursed per `(` and raised RecursionError (500)."""
    path = await add_channel(harness, "mailgun", {"signing_key": KEY})
    nested = "(" * 5000 + "anna@example.pl"
    for n, over in enumerate(({"from": nested}, {"from": "", "sender": nested})):
        fields = _mailgun(f"{n}" * 50, over=over)
        r = await harness.client.post(
            path,
            content=urlencode(fields),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == "application/problem+json"
    assert await harness.events() == []


async def test_mailgun_multipart_with_attachment(harness: Harness) -> None:
    path = await add_channel(harness, "mailgun", {"signing_key": KEY})
    fields = _mailgun("m" * 50)
    parts = [
        f'--b\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields.items()
    ]
    parts.append(
        '--b\r\nContent-Disposition: form-data; name="attachment-1"; filename="faktura.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-1.4\r\n--b--\r\n"
    )
    raw = "".join(parts).encode()
    r = await harness.client.post(
        path, content=raw, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert r.status_code == 200, r.text
    data = (await harness.events())[0]["data"]
    assert data["attachments"][0]["name"] == "faktura.pdf"
    assert data["attachments"][0]["sha256"] == hashlib.sha256(b"%PDF-1.4").hexdigest()


@pytest.mark.parametrize(
    ("date", "kept"),
    [
        ("Fri, 22 Nov 2024 09:15:00 +0100", "2024-11-22T09:15:00+01:00"),
        ("Fri, 31 Dec 9999 23:00:00 -0500", None),
        ("Thu, 1 Jan 1969 00:00:00 +0000", None),
    ],
)
async def test_an_absurd_date_header_is_dropped_and_the_mail_kept(
    harness: Harness, date: str, kept: str | None
) -> None:
    """The Date header is the sender's clock: the mail is a customer's message all the same."""
    path = await add_channel(harness, "email", {"signing_secret": SECRET})
    raw = _mime("Paczka", "Content-Type: text/plain; charset=us-ascii", "Gdzie paczka?")
    raw = raw.replace(b"Fri, 22 Nov 2024 09:15:00 +0100", date.encode())
    assert await _post(harness, path, raw) == 200
    assert (await harness.events())[0]["data"].get("provider_timestamp") == kept
