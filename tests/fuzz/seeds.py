"""Seed payloads of every provider and the mutations the parser fuzz target applies to them."""

from __future__ import annotations

import json
import random
from typing import Any
from urllib.parse import parse_qsl, urlencode

from tests.unit.ingest import samples

_WA_STATUS = {"id": "wamid.o1", "status": "failed", "timestamp": "1732262501"}
_WA_MEDIA = {
    "from": "48600100200",
    "id": "wamid.2",
    "timestamp": "1732262400",
    "type": "image",
    "image": {"id": "m1", "mime_type": "image/jpeg", "sha256": "x", "caption": "zdjęcie"},
}
WHATSAPP = [
    samples.whatsapp([samples.wa_text("wamid.1", "Gdzie moja paczka?")]),
    samples.whatsapp([_WA_MEDIA], [{**_WA_STATUS, "recipient_id": "48600100200"}]),
]
MESSENGER = [
    samples.messenger([samples.ms_text("m_1", "Привет, где заказ?")]),
    samples.messenger(
        [
            {
                "sender": {"id": "1"},
                "recipient": {"id": "1234567890"},
                "timestamp": 1732262400000,
                "message": {
                    "mid": "m_2",
                    "attachments": [{"type": "image", "payload": {"url": "https://x/y.jpg"}}],
                },
            },
            {"sender": {"id": "1"}, "delivery": {"mids": ["m_1"], "watermark": 1732262400000}},
        ]
    ),
]
TELEGRAM = [
    samples.telegram(1, 1, "Bună ziua, coletul?"),
    json.dumps(
        {
            "update_id": 2,
            "message": {
                "message_id": 5,
                "date": 1732262400,
                "from": {"id": 7, "first_name": "Jan", "language_code": "pl"},
                "chat": {"id": 7, "type": "private"},
                "caption": "faktura",
                "document": {"file_id": "f", "file_name": "a.pdf", "file_size": 10},
            },
        }
    ).encode(),
]
TWILIO_SMS = [
    urlencode(samples.twilio_sms("SM1", "Hello, where is my parcel?")).encode(),
    urlencode(
        {
            **samples.twilio_sms("SM2", "", sender="whatsapp:+48600100200"),
            "NumMedia": "1",
            "MediaUrl0": "https://api.twilio.com/x",
            "MediaContentType0": "image/png",
        }
    ).encode(),
    b"MessageSid=SM3&MessageStatus=delivered&To=%2B48600100200&ErrorCode=",
]
TWILIO_VOICE = [
    b"CallSid=CA1&CallStatus=completed&From=%2B48600100200&To=%2B48221234567&CallDuration=61"
    b"&Timestamp=Thu%2C+21+Nov+2026+09%3A00%3A00+%2B0000&Direction=inbound",
    b"CallSid=CA2&CallStatus=ringing&From=anonymous&Timestamp=x",
]
_MAILGUN_FIELDS = {
    "from": "=?utf-8?q?Zofia?= <zofia@example.pl>",
    "recipient": "support@shop.pl",
    "subject": "Re: zamówienie 123",
    "body-plain": "Dzień dobry\n\n> stara wiadomość\n-- \nZofia",
    "body-html": "<p>Dzień dobry</p>",
    "Message-Id": "<a@b>",
    "In-Reply-To": "<z@b>",
    "message-headers": json.dumps([["Date", "Thu, 21 Nov 2026 09:00:00 +0000"]]),
    "timestamp": "1732262400",
    "token": "t" * 50,
    "signature": "s",
}


def _multipart(fields: dict[str, str], files: dict[str, bytes]) -> bytes:
    parts = [
        f'--b\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts += [
        f'--b\r\nContent-Disposition: form-data; name="{k}"; filename="{k}.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n".encode()
        + v
        + b"\r\n"
        for k, v in files.items()
    ]
    return b"".join(parts) + b"--b--\r\n"


MAILGUN = [
    _multipart(_MAILGUN_FIELDS, {}),
    _multipart(_MAILGUN_FIELDS, {"attachment-1": b"%PDF-1.4 \x00\xff"}),
]
MIME = [
    b"From: =?koi8-r?b?8M/T2czLwQ==?= <a@b.ru>\r\nTo: c@d.pl\r\nSubject: =?utf-8?q?x?=\r\n"
    b"Message-ID: <1@b>\r\nIn-Reply-To: <0@b>\r\nReferences: <0@b> <p@b>\r\n"
    b"Date: Thu, 21 Nov 2026 09:00:00 +0100\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative;"
    b" boundary=i\r\n\r\n--i\r\nContent-Type: text/plain; charset=iso-8859-2\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\nZa=BF=F3=B3=E6\r\n--i\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87</p>\r\n"
    b"--i--\r\n--o\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
    b"filename*=utf-8''fa%C5%82ktura.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n"
    b"--o--\r\n",
    b"From: Ion <ion@example.ro>\r\nSubject: colet\r\nContent-Type: text/html\r\n\r\n"
    b"<html><body><div>Bun\xc4\x83 ziua<br>unde e coletul?</div><blockquote>vechi</blockquote>"
    b"</body></html>\r\n",
]
_ADAPTER: dict[str, Any] = {
    "specversion": "1.0",
    "id": "5d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "source": "urn:switchboard:adapter.viber",
    "type": "com.switchboard.inbound.message",
    "time": "2026-11-20T09:15:02Z",
    "datacontenttype": "application/json",
    "tenantid": "acme",
    "correlationid": "5d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "data": {
        "adapter": "viber-bridge",
        "channel": "api",
        "external_id": "viber-5541",
        "sender_kind": "phone",
        "sender": "0721 234 567",
        "region": "RO",
        "display_name": "Ioana Popescu",
        "sent_at": "2026-11-20T09:15:00Z",
        "conversation_id": "conv-42",
        "text": "Bună ziua, coletul meu nu a ajuns încă.",
        "html": "<p>Bună</p>",
        "attachments": [],
    },
}
ADAPTER = [
    json.dumps(_ADAPTER).encode(),
    json.dumps({**_ADAPTER, "data": {**_ADAPTER["data"], "sender_kind": "email"}}).encode(),
]

# Fragments that mean something to one of the formats.
TOKENS = [
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"null",
    b"-1",
    b"1e999",
    b"99999999999999999999999",
    b"\\u0000",
    b"\\ud800",
    b"&",
    b"=",
    b"%",
    b"%ZZ",
    b"\r\n",
    b"\r\n\r\n",
    b"--b\r\n",
    b"--b--",
    b"--o\r\n",
    b"=?utf-8?b?",
    b"=?x-unknown?q?=FF?=",
    b"?=",
    b"Content-Type: multipart/mixed; boundary=",
    b"Content-Transfer-Encoding: base64\r\n",
    b"charset=",
    b"<",
    b">",
    b"<a@b>",
    b"whatsapp:",
    b"+",
    b"\x00",
    b"\xff\xfe",
    b"\xc3",
    b"\xe2\x80\xae",
]
HOSTILE: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    -(2**70),
    1e308,
    "",
    " ",
    "x" * 5000,
    "\u0000",
    "\ud800",
    "ä" * 300,
    "+48 600 100 200",
    "whatsapp:+1",
    "not-a-phone",
    "a@b",
    "<script>",
    "1732262400",
    "-99999999999",
    "9" * 40,
    [],
    {},
    [[[[[]]]]],
    {"id": {"id": None}},
]


def _json_mutation(rng: random.Random, raw: bytes) -> bytes | None:
    """Replace one node of a JSON document with a hostile value (None if not JSON)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    nodes: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k in node:
                nodes.append((node, k))
                walk(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                nodes.append((node, i))
                walk(node[i])

    walk(doc)
    if not nodes:
        return None
    for _ in range(rng.randint(1, 3)):
        parent, key = rng.choice(nodes)
        try:
            parent[key] = rng.choice(HOSTILE)
        except (IndexError, KeyError, TypeError):
            continue
    return json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


def _form_mutation(rng: random.Random, raw: bytes) -> bytes:
    """Replace or drop a form field's value (urlencoded bodies)."""
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    if not pairs:
        return raw
    i = rng.randrange(len(pairs))
    if rng.random() < 0.2:
        pairs.pop(i)
    else:
        value = rng.choice(HOSTILE)
        pairs[i] = (pairs[i][0], value if isinstance(value, str) else json.dumps(value))
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()


def _byte_mutation(rng: random.Random, raw: bytes, pool: list[bytes]) -> bytes:
    data = bytearray(raw)
    at = rng.randint(0, len(data))
    op = rng.randrange(8)
    if op == 7 and rng.random() < 0.7:  # blow-ups are costly: rarer than the other mutations
        op = 0
    if op == 0 and data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif op == 1:
        data[at:at] = rng.choice(TOKENS)
    elif op == 2:
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif op == 3:
        del data[at : at + rng.randint(1, 64)]
    elif op == 4:
        end = min(len(data), at + rng.randint(1, 64))
        data[at:at] = data[at:end] * rng.randint(2, 8)
    elif op == 5:
        other = rng.choice(pool)
        cut = rng.randint(0, len(other))
        data[at:] = other[cut:]
    elif op == 6:
        data = data[:at]
    else:  # blow-ups: deep nesting, long runs, many parts (what makes parsers slow)
        piece = rng.choice([b"[", b'{"a":', b"--b\r\n", b"=?utf-8?q?", b"\r\n ", b"a", b"&x="])
        data[at:at] = piece * rng.choice([100, 1000, 1000, 5000, 20000])
    return bytes(data)


def mutate(rng: random.Random, raw: bytes, pool: list[bytes], *, kind: str) -> bytes:
    """One fuzz input derived from `raw`: structure-aware for JSON and forms, else byte-wise."""
    if kind == "json" and rng.random() < 0.5:
        mutated = _json_mutation(rng, raw)
        if mutated is not None:
            return mutated
    if kind == "form" and rng.random() < 0.5:
        return _form_mutation(rng, raw)
    for _ in range(rng.randint(1, 4)):
        raw = _byte_mutation(rng, raw, pool)
    return raw
