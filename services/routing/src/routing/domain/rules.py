"""Default multilingual classification rules (pl, ru, ro, en): category keywords and sentiment cues."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """A regular expression that, when found, votes for a category (language None = any)."""

    category: str
    pattern: str
    language: str | None = None
    weight: float = 1.0


_CATEGORY_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "delivery_delay": {
        "en": (
            r"where\s+is\s+my\s+(order|parcel|package)",
            r"\blate\b",
            r"not\s+(yet\s+)?(arrived|delivered)",
            r"\bdelay",
            r"still\s+waiting",
        ),
        "pl": (
            r"gdzie\s+jest\s+(moja\s+)?(paczk|przesyłk|zamówieni)",
            r"spóźni",
            r"opóźni",
            r"nie\s+dotar",
            r"nie\s+przyszł",
            r"wciąż\s+czekam|nadal\s+czekam|czekam\s+(już\s+)?od",
        ),
        "ru": (
            r"где\s+(мой|моя|мои)\s+(заказ|посылк)",
            r"задерж",
            r"опазд",
            r"не\s+(пришл|доставил|получил)",
            r"до\s+сих\s+пор",
        ),
        "ro": (
            r"unde\s+(este|e)\s+(coletul|comanda)",
            r"întârzi|intarzi",
            r"nu\s+(a\s+)?(ajuns|sosit)",
            r"încă\s+aștept|inca\s+astept",
        ),
    },
    "damaged_parcel": {
        "en": (r"damaged", r"broken", r"crushed", r"smashed"),
        "pl": (r"uszkodz", r"zniszcz", r"rozbit", r"zgniecion|pogniecion"),
        "ru": (r"поврежд", r"разбит", r"сломан", r"помят"),
        "ro": (r"deteriorat", r"spart", r"stricat", r"zdrobit"),
    },
    "returns": {
        "en": (r"\breturn", r"refund", r"send\s+(it\s+)?back", r"exchange"),
        "pl": (r"zwrot", r"zwróci", r"odesła", r"wymian"),
        "ru": (r"возврат", r"вернуть", r"обмен"),
        "ro": (r"retur", r"returna", r"rambursa", r"schimb"),
    },
    "billing": {
        "en": (r"invoice", r"charged", r"payment", r"\bbill", r"overcharg"),
        "pl": (r"faktur", r"płatnoś|platnos", r"obciąż", r"rachun", r"zapłaci"),
        "ru": (r"счёт|счет", r"оплат", r"списал", r"плат[её]ж"),
        "ro": (r"factur", r"plat[aăi]", r"taxat", r"debitat"),
    },
    "technical": {
        "en": (
            r"\berror\b",
            r"\bbug\b",
            r"doesn.?t\s+work",
            r"not\s+working",
            r"\bcrash",
            r"\bapp\b",
        ),
        "pl": (r"błąd|blad", r"nie\s+działa", r"aplikacj", r"awari"),
        "ru": (r"ошибк", r"не\s+работает", r"приложени", r"сбой"),
        "ro": (r"eroare", r"nu\s+func[tț]ioneaz", r"aplica[tț]i"),
    },
    "account": {
        "en": (r"password", r"log\s*in", r"\baccount\b", r"sign\s*in"),
        "pl": (r"hasł|hasl", r"zaloguj|logowani", r"kont[oa]\b"),
        "ru": (r"парол", r"войти|вход", r"аккаунт|учётн"),
        "ro": (r"parol", r"autentific|logare", r"\bcont(ul)?\b"),
    },
}

NEGATIVE: dict[str, tuple[str, ...]] = {
    "en": (
        r"angry",
        r"terrible",
        r"awful",
        r"unacceptable",
        r"worst",
        r"ridiculous",
        r"furious",
        r"scam",
        r"!!+",
    ),
    "pl": (
        r"skandal",
        r"żenad|zenad",
        r"fataln",
        r"okropn",
        r"wściek",
        r"nie\s+do\s+przyjęcia",
        r"oszu",
        r"!!+",
    ),
    "ru": (r"ужасн", r"безобрази", r"возмут", r"отвратит", r"обман", r"!!+"),
    "ro": (
        r"inacceptabil",
        r"groaznic",
        r"îngrozitor|ingrozitor",
        r"scandal",
        r"furios",
        r"țeap|teapa",
        r"!!+",
    ),
}
POSITIVE: dict[str, tuple[str, ...]] = {
    "en": (r"thank", r"great", r"awesome", r"perfect", r"love"),
    "pl": (r"dziękuj|dzieki|dzięki", r"super", r"świetn", r"doskonal"),
    "ru": (r"спасибо", r"отлично", r"благодар", r"прекрасн"),
    "ro": (r"mul[tț]umesc", r"excelent", r"minunat", r"perfect"),
}


def default_rules() -> list[Rule]:
    """The built-in category rules every tenant starts with."""
    return [
        Rule(category, pattern, language)
        for category, by_lang in _CATEGORY_WORDS.items()
        for language, patterns in by_lang.items()
        for pattern in patterns
    ]
