"""Offline language detection (lingua), restricted to the languages a tenant serves."""

from __future__ import annotations

from functools import lru_cache

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

_MIN_CHARS = 8
# A quick (trigram-only) verdict at least this confident is final; below it the full model
# decides. On our samples the pair answered exactly as the full model alone does.
_QUICK_CONFIDENCE = 0.99


@lru_cache(maxsize=32)
def _detectors(codes: frozenset[str]) -> tuple[LanguageDetector, LanguageDetector] | None:
    """(quick, full) detectors of these languages; None with fewer than two known ones."""
    languages = []
    for code in sorted(codes):
        try:
            languages.append(Language.from_iso_code_639_1(IsoCode639_1.from_str(code)))
        except ValueError:
            continue  # an unknown code in a channel's config is ignored, not fatal
    if len(languages) < 2:
        return None

    def builder() -> LanguageDetectorBuilder:  # a fresh one each: its settings mutate in place
        return LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models()

    return builder().with_low_accuracy_mode().build(), builder().build()


def detect_language(text: str, languages: frozenset[str]) -> str | None:
    """The ISO 639-1 code of the text's language among `languages`, or None if unsure.

    lingua's full model reads every 1- to 5-gram of a short text: about 0.3 ms per message
    with its tables cold in the CPU cache (as they are between webhooks), a fifth of a
    webhook's CPU. Its trigram-only mode costs half that and is sure of most messages;
    only when it is not does the full model run (at most the cost of both)."""
    if len(text.strip()) < _MIN_CHARS:
        return None
    detectors = _detectors(languages)
    if detectors is None:
        return next(iter(languages), None) if len(languages) == 1 else None
    quick, full = detectors
    sample = text[:2000]
    best = quick.compute_language_confidence_values(sample)[0]
    found = best.language if best.value >= _QUICK_CONFIDENCE else full.detect_language_of(sample)
    return found.iso_code_639_1.name.lower() if found else None


def warm_up(languages: frozenset[str]) -> None:
    """Load the language models now, not on the first request (lingua loads them lazily)."""
    _detectors(languages)
