"""Text for people: HTML to text, quoted replies and signatures stripped (full body kept apart)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr"}
_SKIP = {"script", "style", "head", "title"}

# A line that introduces a quoted reply, in the languages we serve (en, pl, ru, ro) and the
# usual client separators; everything from it on is the quoted history.
_QUOTE_HEADERS = [
    r"^On .{0,200}wrote:\s*$",
    r"^W dniu .{0,200}(pisze|napisał|napisała|napisał\(a\)):\s*$",
    r"^.{0,200}(пишет|написал|написала|написал\(а\)):\s*$",  # noqa: RUF001
    r"^În(tr-o)? .{0,200}a scris:\s*$",
    r"^Pe .{0,200}a scris:\s*$",
    r"^-{2,}\s*(Original Message|Wiadomość oryginalna|Исходное сообщение|Mesaj original)\s*-{2,}",
    r"^_{10,}\s*$",
    r"^(From|Od|От|De la):\s.+$",
]
_QUOTE_RE = re.compile("|".join(f"(?:{p})" for p in _QUOTE_HEADERS), re.IGNORECASE)
_SIGNATURE_RE = re.compile(r"^(-- ?|—\s*)$")
_MOBILE_SIG = re.compile(
    r"^(Sent from my .+|Wysłane z .+|Отправлено с .+|Trimis de pe .+)$",  # noqa: RUF001
    re.IGNORECASE,
)


class _TextExtractor(HTMLParser):
    """Collects visible text, turning block elements into line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP and self._skip:
            self._skip -= 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML document, blocks on their own lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return tidy("\n".join(lines))


def tidy(text: str) -> str:
    """Unify line endings, drop trailing spaces and runs of blank lines."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return out.strip()


def strip_quotes_and_signature(text: str) -> str:
    """The new part of a reply: no quoted history, no `> ` lines, no signature block."""
    kept: list[str] = []
    for line in tidy(text).split("\n"):
        stripped = line.strip()
        if _QUOTE_RE.match(stripped) or _SIGNATURE_RE.match(line) or _MOBILE_SIG.match(stripped):
            break
        if stripped.startswith(">"):
            continue
        kept.append(line)
    result = tidy("\n".join(kept))
    return result or tidy(text)
