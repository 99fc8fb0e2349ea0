"""Offline language detection (lingua), restricted to the languages a tenant serves."""

from __future__ import annotations

from functools import lru_cache

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

_MIN_CHARS = 8


@lru_cache(maxsize=32)
def _detector(codes: frozenset[str]) -> LanguageDetector | None:
    languages = []
    for code in sorted(codes):
        try:
            languages.append(Language.from_iso_code_639_1(IsoCode639_1.from_str(code)))
        except ValueError:
            continue  # an unknown code in a channel's config is ignored, not fatal
    if len(languages) < 2:
        return None
    return LanguageDetectorBuilder.from_languages(*languages).build()


def detect_language(text: str, languages: frozenset[str]) -> str | None:
    """The ISO 639-1 code of the text's language among `languages`, or None if unsure."""
    if len(text.strip()) < _MIN_CHARS:
        return None
    detector = _detector(languages)
    if detector is None:
        return next(iter(languages), None) if len(languages) == 1 else None
    found = detector.detect_language_of(text[:2000])
    return found.iso_code_639_1.name.lower() if found else None


def warm_up(languages: frozenset[str]) -> None:
    """Load the language models now, not on the first request (lingua loads them lazily)."""
    detect_language("warm up the language models", languages)
