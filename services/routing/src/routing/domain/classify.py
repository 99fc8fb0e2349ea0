"""Classification behind a port: category, sentiment, priority and language of a customer message."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

from routing.domain.rules import NEGATIVE, POSITIVE, Rule, default_rules

PRIORITIES = ("urgent", "high", "normal", "low")
_LINGUA = {
    Language.POLISH: "pl",
    Language.RUSSIAN: "ru",
    Language.ROMANIAN: "ro",
    Language.ENGLISH: "en",
}


@dataclass(frozen=True)
class Classification:
    """What a classifier says about a message."""

    category: str
    sentiment: str
    priority: str
    language: str | None
    confidence: float


class Classifier(Protocol):
    """The port: a rule engine today, a trained model tomorrow."""

    def classify(self, text: str, *, language: str | None = None) -> Classification:
        """Classify one message (language as given by the channel or customer, if known)."""
        ...


@lru_cache(maxsize=1)
def _detector() -> LanguageDetector:
    return LanguageDetectorBuilder.from_languages(*_LINGUA).with_low_accuracy_mode().build()


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text among the supported languages, or None if too short to tell."""
    if len(text.strip()) < 3:
        return None
    found = _detector().detect_language_of(text)
    return _LINGUA.get(found) if found else None


def priority_for(category: str, sentiment: str) -> str:
    """Angry customers and delivery delays rank higher; both together are urgent."""
    rank = PRIORITIES.index("normal")
    if category in ("delivery_delay", "damaged_parcel"):
        rank -= 1
    if sentiment == "negative":
        rank -= 1
    return PRIORITIES[max(rank, 0)]


def _any_of(patterns: Iterable[str]) -> re.Pattern[str]:
    """One expression found wherever any of `patterns` is (one scan instead of one each)."""
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


class RuleClassifier:
    """Keyword/regex rules per language; the highest-weighted category wins, else `other`."""

    def __init__(self, rules: Iterable[Rule] | None = None) -> None:
        self._rules = [
            (r, re.compile(r.pattern, re.IGNORECASE)) for r in (rules or default_rules())
        ]
        # the rules that apply to a message in each language, in order (`None`: undetected)
        languages = {r.language for r, _ in self._rules} | {None}
        self._applying = {
            lang: [(r, rx) for r, rx in self._rules if r.language is None or r.language == lang]
            for lang in languages
        }
        self._negative = {k: _any_of(v) for k, v in NEGATIVE.items()}
        self._positive = {k: _any_of(v) for k, v in POSITIVE.items()}

    def classify(self, text: str, *, language: str | None = None) -> Classification:
        """Classify one message."""
        lang = language or detect_language(text)
        scores: dict[str, float] = defaultdict(float)
        applying = self._applying.get(lang, self._applying[None])  # a language without rules
        for rule, rx in applying:
            if rx.search(text):
                scores[rule.category] += rule.weight
        if not scores:  # a wrong language guess must not hide an obvious keyword
            for rule, rx in self._rules:
                if rx.search(text):
                    scores[rule.category] += rule.weight
        category = max(scores, key=lambda c: scores[c]) if scores else "other"
        total = sum(scores.values())
        confidence = round(scores[category] / total, 3) if total else 0.5
        sentiment = self._sentiment(text, lang)
        return Classification(
            category, sentiment, priority_for(category, sentiment), lang, confidence
        )

    def _sentiment(self, text: str, lang: str | None) -> str:
        langs = [lang] if lang in self._negative else list(self._negative)
        if any(self._negative[code].search(text) for code in langs):
            return "negative"
        if any(self._positive[code].search(text) for code in langs):
            return "positive"
        return "neutral"


def reassess(current: Classification, latest: Classification) -> Classification:
    """A case's classification after another message: a vague message keeps the category, and
    priority never drops while the case is open (an angry follow-up still raises it)."""
    category = current.category if latest.category == "other" else latest.category
    floor = min(PRIORITIES.index(current.priority), PRIORITIES.index(latest.priority))
    priority = min(PRIORITIES.index(priority_for(category, latest.sentiment)), floor)
    confidence = current.confidence if category == current.category else latest.confidence
    return Classification(
        category, latest.sentiment, PRIORITIES[priority], current.language, confidence
    )
