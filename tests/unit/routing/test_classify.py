"""Rule-based multilingual classification: category, sentiment, priority, language."""

from __future__ import annotations

import pytest

from routing.domain.classify import RuleClassifier, priority_for
from routing.domain.rules import Rule

CLF = RuleClassifier()


@pytest.mark.parametrize(
    ("text", "category", "language"),
    [
        ("Gdzie jest moja paczka? Czekam już od tygodnia.", "delivery_delay", "pl"),
        ("Где мой заказ? Посылка до сих пор не пришла.", "delivery_delay", "ru"),
        ("Unde este coletul meu? Nu a ajuns încă.", "delivery_delay", "ro"),
        ("Where is my order? It has not arrived yet.", "delivery_delay", "en"),
        ("Paczka przyszła uszkodzona, karton był zgnieciony.", "damaged_parcel", "pl"),
        ("I want to return these shoes and get a refund.", "returns", "en"),
        ("Am fost taxat de două ori, vreau factura corectă.", "billing", "ro"),
        ("Приложение не работает, выдаёт ошибку.", "technical", "ru"),
        ("Nie mogę się zalogować, zapomniałem hasła.", "account", "pl"),
        ("Hello, what are your opening times for the store?", "other", "en"),
    ],
)
def test_categories_and_language_in_four_languages(text: str, category: str, language: str) -> None:
    result = CLF.classify(text)
    assert (result.category, result.language) == (category, language)


def test_language_given_by_channel_wins_over_detection() -> None:
    assert CLF.classify("ok", language="ro").language == "ro"


def test_angry_late_parcel_is_urgent_and_calm_question_is_normal() -> None:
    angry = CLF.classify("To skandal! Paczka spóźnia się już tydzień!!")
    calm = CLF.classify("Hello, what are your opening times for the store?")
    assert (angry.sentiment, angry.priority) == ("negative", "urgent")
    assert (calm.sentiment, calm.priority) == ("neutral", "normal")


def test_thanks_is_positive() -> None:
    assert CLF.classify("Dziękuję bardzo, wszystko super").sentiment == "positive"


def test_priority_ranks_delays_and_anger_higher() -> None:
    assert priority_for("delivery_delay", "neutral") == "high"
    assert priority_for("billing", "negative") == "high"
    assert priority_for("other", "positive") == "normal"


def test_tenant_rules_replace_the_defaults() -> None:
    custom = RuleClassifier([Rule("billing", r"\bfaktura\b", "pl")])
    assert (
        custom.classify("Proszę o fakturę, faktura potrzebna", language="pl").category == "billing"
    )
    assert custom.classify("Gdzie jest moja paczka?", language="pl").category == "other"


def test_a_vague_follow_up_keeps_category_and_priority_an_angry_one_raises_it() -> None:
    from routing.domain.classify import reassess

    opened = CLF.classify("Gdzie jest moja paczka?")
    vague = reassess(opened, CLF.classify("12345"))
    angry = reassess(opened, CLF.classify("To skandal!!"))
    assert (vague.category, vague.priority) == ("delivery_delay", "high")
    assert (angry.category, angry.sentiment, angry.priority) == (
        "delivery_delay",
        "negative",
        "urgent",
    )
