"""Rule-based multilingual classification: category, sentiment, priority, language."""

from __future__ import annotations

import random
import re
from collections import defaultdict

import pytest

from routing.domain.classify import RuleClassifier, detect_language, priority_for
from routing.domain.rules import _CATEGORY_WORDS, NEGATIVE, POSITIVE, Rule

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


def _every_rule(clf: RuleClassifier, text: str, language: str | None) -> tuple[str, str, float]:
    """Category, sentiment and confidence by trying every rule and cue one by one (the
    classifier keeps per-language lists and one expression per cue list: same answers)."""
    lang = language or detect_language(text)
    scores: dict[str, float] = defaultdict(float)
    for rule, rx in clf._rules:
        if (rule.language is None or rule.language == lang) and rx.search(text):
            scores[rule.category] += rule.weight
    if not scores:
        for rule, rx in clf._rules:
            if rx.search(text):
                scores[rule.category] += rule.weight
    category = max(scores, key=lambda c: scores[c]) if scores else "other"
    total = sum(scores.values())
    confidence = round(scores[category] / total, 3) if total else 0.5
    langs = [lang] if lang in NEGATIVE else list(NEGATIVE)

    def found(cues: dict[str, tuple[str, ...]]) -> bool:
        return any(re.search(p, text, re.IGNORECASE) for code in langs for p in cues[code])

    sentiment = "negative" if found(NEGATIVE) else "positive" if found(POSITIVE) else "neutral"
    return category, sentiment, confidence


@pytest.mark.parametrize(
    "clf",
    [
        CLF,
        RuleClassifier(
            [
                Rule("billing", r"faktur", "pl", 2.0),
                Rule("returns", r"zwrot|return", None, 1.0),
                Rule("technical", r"app", "en", 1.5),
                Rule("account", r"konto", "de"),
            ]
        ),
    ],
)
def test_answers_are_those_of_trying_every_rule_one_by_one(clf: RuleClassifier) -> None:
    words = [p for langs in _CATEGORY_WORDS.values() for ps in langs.values() for p in ps]
    words += [p for cues in (NEGATIVE, POSITIVE) for ps in cues.values() for p in ps]
    samples = [w.replace("\\s+", " ").replace("\\b", "").strip("()?.|") for w in words]
    rnd = random.Random(3)
    texts = [" ".join(rnd.sample(samples, k)) for k in (1, 2, 3) for _ in range(60)]
    texts += ["ok", "", "Faktura i zwrot!!", "app return konto", "Привет", "Danke, Konto"]
    for text in texts:
        for language in (None, "pl", "en", "ru", "ro", "de"):
            got = clf.classify(text, language=language)
            assert (got.category, got.sentiment, got.confidence) == _every_rule(
                clf, text, language
            ), (text, language)
