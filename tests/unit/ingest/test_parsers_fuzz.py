"""Fuzzing: every provider parser lets only ParseError escape, whatever the bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.domain.errors import ParseError
from ingest.domain.providers.email_mime import parse_mime
from ingest.domain.providers.fields import load_flat_json, load_form
from ingest.domain.providers.mailgun import parse_mailgun, read_form
from ingest.domain.providers.meta import parse_messenger, parse_whatsapp
from ingest.domain.providers.telegram import parse_telegram
from ingest.domain.providers.twilio import parse_twilio_call, parse_twilio_message
from sbcontracts.catalog import InvalidEvent, decode
from tests.fuzz.ingest_parsers import TARGETS, fuzz, summary
from tests.unit.ingest import samples

SHORT_RUN = 1500  # inputs per target in `make test`; `make fuzz` runs 100,000

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)
WA_MEDIA = {
    "from": "48600100200",
    "id": "wamid.2",
    "timestamp": "1732262400",
    "type": "document",
    "document": {"filename": "a.pdf", "mime_type": "application/pdf", "sha256": "qg==", "id": "1"},
}
MS_MEDIA = {
    **samples.ms_text("m_2", ""),
    "message": {
        "mid": "m_2",
        "attachments": [{"type": "file", "payload": {"url": "https://cdn.example/a%20b.pdf"}}],
    },
}
SEEDS = [
    samples.whatsapp([samples.wa_text("wamid.1", "hi"), WA_MEDIA]),
    samples.messenger([samples.ms_text("m_1", "hi"), MS_MEDIA]),
    samples.telegram(1, 1, "hi"),
]


def _only_parse_errors(call: Any, *args: Any, **kwargs: Any) -> None:
    try:
        call(*args, **kwargs)
    except ParseError:
        pass


def _mutate(doc: Any, path: list[int], value: Any) -> Any:
    """Replace one node of a JSON document, chosen by a list of indexes, with `value`."""
    if not path or not isinstance(doc, dict | list) or not doc:
        return value
    keys = list(doc.keys()) if isinstance(doc, dict) else list(range(len(doc)))
    key = keys[path[0] % len(keys)]
    doc[key] = _mutate(doc[key], path[1:], value)
    return doc


@FUZZ
@given(st.binary(max_size=2000))
def test_json_parsers_on_random_bytes(raw: bytes) -> None:
    for parser in (parse_whatsapp, parse_messenger):
        _only_parse_errors(parser, raw)
    _only_parse_errors(parse_telegram, raw, bot_id="b")


@FUZZ
@given(st.sampled_from(SEEDS), st.lists(st.integers(0, 50), max_size=8), json_values)
def test_json_parsers_on_mutated_real_payloads(seed: bytes, path: list[int], value: Any) -> None:
    raw = json.dumps(_mutate(json.loads(seed), path, value)).encode()
    for parser in (parse_whatsapp, parse_messenger):
        _only_parse_errors(parser, raw)
    _only_parse_errors(parse_telegram, raw, bot_id="b")


TWILIO_FIELDS = [
    *samples.twilio_sms("SM1", "x"),
    "MessageStatus",
    "CallSid",
    "CallStatus",
    "Timestamp",
    "CallDuration",
    "MediaUrl0",
]


@FUZZ
@given(st.dictionaries(st.sampled_from(TWILIO_FIELDS), st.text(max_size=30), max_size=12))
def test_twilio_parsers_on_random_forms(params: dict[str, str]) -> None:
    _only_parse_errors(parse_twilio_message, params)
    _only_parse_errors(parse_twilio_call, params, region="PL")


@FUZZ
@given(st.sampled_from(TWILIO_FIELDS), json_values, st.binary(max_size=200))
def test_twilio_json_bodies_on_mutated_and_random_input(field: str, value: Any, raw: bytes) -> None:
    """Twilio's JSON-bodied webhooks carry the form's fields as JSON members."""
    mutated = json.dumps({**samples.twilio_sms("SM1", "x"), field: value}).encode()
    for body in (mutated, raw):
        try:
            params = load_flat_json(body)
        except ParseError:
            continue
        _only_parse_errors(parse_twilio_message, params)
        _only_parse_errors(parse_twilio_call, params, region="PL")


@FUZZ
@given(st.binary(max_size=3000))
def test_form_and_multipart_readers_on_random_bytes(raw: bytes) -> None:
    _only_parse_errors(load_form, raw)
    _only_parse_errors(read_form, raw, "multipart/form-data; boundary=b")
    _only_parse_errors(
        read_form, b"--b\r\n" + raw + b"\r\n--b--", "multipart/form-data; boundary=b"
    )


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "from",
                "sender",
                "recipient",
                "subject",
                "body-plain",
                "body-html",
                "Message-Id",
                "message-headers",
                "body-mime",
                "References",
            ]
        ),
        st.text(max_size=200),
        max_size=10,
    )
)
def test_mailgun_parser_on_random_fields(fields: dict[str, str]) -> None:
    _only_parse_errors(parse_mailgun, fields, ())


MIME_SEED = (
    b"From: =?koi8-r?b?8M/T2czLwQ==?= <a@b.ru>\r\nTo: c@d.pl\r\nSubject: =?utf-8?q?x?=\r\n"
    b"Message-ID: <1@b>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
    b"--o\r\nContent-Type: text/plain; charset=iso-8859-2\r\nContent-Transfer-Encoding: "
    b"quoted-printable\r\n\r\nZa=BF=F3=B3=E6\r\n--o\r\nContent-Type: application/pdf\r\n"
    b"Content-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"JVBERi0=\r\n--o--\r\n"
)


@FUZZ
@given(st.binary(max_size=3000))
def test_mime_parser_on_random_bytes(raw: bytes) -> None:
    _only_parse_errors(parse_mime, raw)


@FUZZ
@given(st.integers(0, len(MIME_SEED)), st.integers(0, 200), st.binary(max_size=60))
def test_mime_parser_on_mutated_real_message(at: int, cut: int, insert: bytes) -> None:
    raw = MIME_SEED[:at] + insert + MIME_SEED[at + cut :]
    _only_parse_errors(parse_mime, raw)


# Inputs the fuzz target (tests/fuzz/ingest_parsers.py) found escaping as undeclared errors or
# taking seconds; each is now a ParseError (or InvalidEvent for adapter records).
WA_SURROGATE = samples.whatsapp([samples.wa_text("wamid.1", "hi")]).replace(
    b"48221234567", b"+\xed\xa0\x80"
)


@pytest.mark.parametrize(
    "raw",
    [WA_SURROGATE, WA_SURROGATE.replace(b"+\xed\xa0\x80", b"+\\ud800")],
    ids=["raw", "escaped"],
)
def test_lone_surrogates_in_json_are_parse_errors(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_whatsapp(raw)


def test_messenger_delivery_mids_that_are_no_list_are_parse_errors() -> None:
    raw = samples.messenger([{"sender": {"id": "1"}, "delivery": {"mids": 7, "watermark": 1}}])
    with pytest.raises(ParseError):
        parse_messenger(raw)


def test_messenger_page_id_too_long_for_a_handle_scope_skips_the_message() -> None:
    from ingest.domain.handles import normalise_handle
    from ingest.domain.model import RawSender
    from sbcontracts.events.common import HandleKind

    with pytest.raises(ParseError):
        normalise_handle(RawSender(HandleKind.MESSENGER, "1", "9" * 201), region=None)


def test_telegram_chat_and_message_ids_too_long_together_are_parse_errors() -> None:
    doc = json.loads(samples.telegram(1, 1, "hi"))
    doc["message"]["chat"]["id"] = "9" * 300
    with pytest.raises(ParseError):
        parse_telegram(json.dumps(doc).encode(), bot_id="b")


def test_headers_full_of_quoted_strings_are_refused_before_the_quadratic_parser() -> None:
    header = b'From: "x' + b'"' * 20_000 + b'" <a@b.pl>\r\n'
    with pytest.raises(ParseError):
        parse_mime(header + b"Subject: s\r\n\r\nbody")
    part = b'--b\r\nContent-Disposition: form-data; name="' + b'"' * 20_000 + b'"\r\n\r\nv\r\n--b--'
    with pytest.raises(ParseError):
        read_form(part, "multipart/form-data; boundary=b")


def test_deeply_nested_adapter_records_are_invalid_events() -> None:
    with pytest.raises(InvalidEvent):
        decode(b'{"type": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


@pytest.mark.parametrize(
    "sender",
    [
        ("from", "(" * 5_000 + "anna@example.pl"),
        ("sender", "(" * 5_000 + "anna@example.pl"),
        ("from", "=?utf-8?q?Zofia?= <zofia" + '{"a":' * 2_000 + "1" + "}" * 2_000 + "@x.pl>"),
    ],
)
def test_mailgun_sender_nested_past_the_stack_is_a_parse_error(sender: tuple[str, str]) -> None:
    # a `make fuzz` finding (the last one, shortened): email.utils.parseaddr recurses per
    # comment and quoted part, and its RecursionError escaped the parser (a 500)
    fields = {sender[0]: sender[1], "Message-Id": "<m@x>"}
    with pytest.raises(ParseError, match="nested too deep"):
        parse_mailgun(fields, ())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_short_run_only_declared_errors_and_under_a_second(target: str) -> None:
    report = fuzz(target, SHORT_RUN)
    print(f"\n{summary(target, SHORT_RUN, report)}")
    assert not report.failures, [(error, raw[:300]) for error, raw in report.failures]
    assert not report.slow, [(took, raw[:300]) for took, raw in report.slow]


def test_a_receipt_of_a_300_character_provider_id_becomes_an_event() -> None:
    from ingest.service_layer.intake import intake_of
    from tests.fuzz.ingest_parsers import CTX

    status = {"id": "ä" * 300, "status": "delivered", "timestamp": "1732262500"}
    intake = intake_of(CTX, parse_whatsapp(samples.whatsapp([], [{**status, "recipient_id": "1"}])))
    assert len(intake.signals) == 1


def test_a_call_sid_too_long_for_a_call_id_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_twilio_call({"CallSid": "ä" * 250, "CallStatus": "completed"}, region="PL")


def test_a_part_header_full_of_domain_literals_is_refused_before_the_stdlib_parses_it() -> None:
    # a fuzz input: thousands of `[` in one part header took the stdlib's parser over a second
    from ingest.domain.providers.mailgun import read_form

    body = b"--b\r\nContent-Disposition: form-" + b"[" * 5000 + b'e"\r\n\r\ns\r\n--b--\r\n'
    with pytest.raises(ParseError, match="too many quoted"):
        read_form(body, "multipart/form-data; boundary=b")
