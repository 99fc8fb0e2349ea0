"""Pure normalisation: quoted replies and signatures in four languages, HTML, handles."""

from __future__ import annotations

import pytest

from ingest.domain.errors import InvalidHandle
from ingest.domain.handles import canonical_email, e164
from ingest.domain.language import detect_language
from ingest.domain.text import html_to_text, strip_quotes_and_signature

LANGS = frozenset({"pl", "ru", "ro", "en"})


@pytest.mark.parametrize(
    ("reply", "new"),
    [
        ("Thanks!\n\nOn Mon, 18 Nov 2024 at 10:00, Shop <a@b.c> wrote:\n> old", "Thanks!"),
        ("Dziękuję.\n\nW dniu 18.11.2024 o 10:00, Sklep <a@b.c> pisze:\n> stare", "Dziękuję."),
        (
            "Спасибо.\n\n18 нояб. 2024 г., в 10:00, Магазин <a@b.c> написал(а):\n> старое",  # noqa: RUF001
            "Спасибо.",
        ),
        (
            "Mulțumesc.\n\nÎn lun., 18 nov. 2024 la 10:00, Magazin <a@b.c> a scris:\n> vechi",
            "Mulțumesc.",
        ),
        ("Mulțumesc.\n\nPe 18 nov. 2024, la 10:00, Magazin a scris:\n> vechi", "Mulțumesc."),
        ("Hi\n> quoted line\nstill mine\n-- \nJan Kowalski\nCEO", "Hi\nstill mine"),
        ("Witam\n\nWysłane z iPhone'a", "Witam"),
        ("Ok\n\n-----Original Message-----\nFrom: x", "Ok"),
    ],
)
def test_quotes_and_signatures_stripped(reply: str, new: str) -> None:
    assert strip_quotes_and_signature(reply) == new


def test_a_message_that_is_only_a_quote_keeps_its_text() -> None:
    assert strip_quotes_and_signature("> only quoted") == "> only quoted"


def test_html_to_text_drops_scripts_and_keeps_blocks() -> None:
    html = "<div>Hello&nbsp;there</div><script>alert(1)</script><p>Line&amp;two</p>"
    assert html_to_text(html) == "Hello there\n\nLine&two"


def test_email_canonical_and_idna() -> None:
    assert canonical_email('"Anna" <Anna.K@Łódź.PL>') == "anna.k@xn--d-uga0v4h.pl"
    with pytest.raises(InvalidHandle):
        canonical_email("no-at-sign")


def test_email_with_comments_nested_past_the_stack_is_an_invalid_handle() -> None:
    # email.utils recurses per comment level: a RecursionError here was an undeclared crash
    with pytest.raises(InvalidHandle, match="nested too deep"):
        canonical_email("(" * 5000 + "anna@example.pl")


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("600 100 200", "PL", "+48600100200"),
        ("+7 (495) 123-45-67", None, "+74951234567"),
        ("0721234567", "RO", "+40721234567"),
        ("whatsapp:+40721234567", "PL", "+40721234567"),
    ],
)
def test_phones_to_e164(raw: str, region: str | None, expected: str) -> None:
    assert e164(raw, region) == expected


def test_phone_without_region_or_plus_is_invalid() -> None:
    with pytest.raises(InvalidHandle):
        e164("600 100 200", None)


def test_short_text_has_no_language_and_restriction_applies() -> None:
    assert detect_language("ok", LANGS) is None
    assert detect_language(
        "Hola, ¿dónde está mi pedido? Gracias por la ayuda", frozenset({"pl", "en"})
    ) in {"pl", "en", None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dzień dobry, moja paczka nie dotarła.", "pl"),
        ("Zamowienie nr 55 jeszcze nie przyszlo, co sie dzieje", "pl"),
        ("Buna ziua, coletul meu nu a ajuns inca", "ro"),
        ("Vreau să returnez produsul", "ro"),
        ("Где мой заказ?", "ru"),
        ("When will the delivery arrive?", "en"),
        # lingua's trigram-only mode alone answers "pl" here: the full model must decide
        ("I want to return the item", "en"),
    ],
)
def test_language_of_short_messages(text: str, expected: str) -> None:
    assert detect_language(text, LANGS) == expected
