"""Hebrew, Arabic and English text analysis for matching (performance.md §6).

A word's *key* is its normalised form: NFC, no niqqud, cantillation or
harakat, no geresh/gershayim (צה"ל → צהל), final letters folded (ם → מ),
Arabic alef/teh marbuta/alef maksura folded, Latin lower-cased and
Snowball-stemmed, digits in ASCII. Maqaf and dashes separate words.

The document side also indexes each Hebrew word with a *legal* prefix
sequence stripped (והביטוח → ביטוח) and each Arabic word Light10-stripped
(والمدرسة → مدرسه), keeping stems of at least three letters. Queries are
not stripped: the user's word is matched as written. Known false positives
of prefix stripping: מים in שמים, לום in שלום, סכם in הסכם.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache

import snowballstemmer  # type: ignore[import-untyped]

_HEBREW = range(0x05D0, 0x05F0)
_ARABIC = range(0x0620, 0x064B)

#: Legal Hebrew prefix sequences (ו ה ב ל מ ש כ). After ב/כ/ל the article ה is
#: absorbed (בבית = ב+ה+בית), so בה-, כה-, לה- are not prefixes.
PREFIXES = frozenset(
    {
        *("ו", "ה", "ב", "כ", "ל", "מ", "ש"),
        *("וה", "וב", "וכ", "ול", "ומ", "וש", "שה", "שב", "שכ", "של", "שמ", "מה", "מש", "כש"),
        *("ושה", "ושב", "ושכ", "ושל", "ושמ", "ומה", "ומש", "וכש"),
        *("שמה", "שכש", "כשה", "כשב", "כשל", "כשמ", "לכש"),
        *("ושמה", "וכשה", "וכשב", "וכשל", "וכשמ", "ולכש"),
    }
)
#: Two-letter Hebrew stems worth finding behind a prefix (keys, finals folded).
SHORT_STEMS = frozenset(["שר", "צו", "גנ", "תו", "יד", "מס", "עמ"])
#: Light10 Arabic article prefixes, longest first.
_AR_ARTICLES = ("وال", "بال", "كال", "فال", "ال", "لل")
#: Light10 Arabic suffixes, longest first.
_AR_SUFFIXES = ("ها", "ان", "ات", "ون", "ين", "يه", "ية", "ه", "ة", "ي")

_GERESH = "'\u05f3\u2018\u2019\u201b\uff07`\u00b4"
_GERSHAYIM = '"\u05f4\u201c\u201d\u201f\u275e\uff02'
_MARKS = "".join(chr(c) for c in range(0x0591, 0x05C8) if c != 0x05BE)
_HARAKAT = "".join(chr(c) for c in range(0x064B, 0x0653)) + "\u0670\u0640"


def _table() -> dict[int, str | None]:
    table: dict[int, str | None] = {ord(c): None for c in _GERESH + _GERSHAYIM + _MARKS + _HARAKAT}
    table.update({ord(a): b for a, b in zip("ךםןףץ", "כמנפצ", strict=True)})
    table.update({ord(a): b for a, b in zip("أإآةى", "اااهي", strict=True)})
    for code in range(0x0660, 0x10000):
        char = chr(code)
        if char.isdecimal() and not char.isascii():
            table[code] = str(unicodedata.decimal(char))
    return table


_TABLE = _table()
#: One surface word: letters and digits, with the marks and quotes that may sit inside.
_WORD = re.compile(f"(?:[^\\W_]|[{re.escape(_MARKS + _HARAKAT + _GERESH + _GERSHAYIM)}])+")
#: The same without excluding ``_``: twice as fast, and right for text without one.
_WORD_OR_UNDERSCORE = re.compile(f"[\\w{re.escape(_MARKS + _HARAKAT + _GERESH + _GERSHAYIM)}]+")
_STEMMER = snowballstemmer.stemmer("english")


def words(text: str) -> list[str]:
    """Split ``text`` into surface words (maqaf, dashes and punctuation separate)."""
    text = unicodedata.normalize("NFC", text)
    return (_WORD if "_" in text else _WORD_OR_UNDERSCORE).findall(text)


@lru_cache(maxsize=262_144)
def key(word: str) -> str:
    """Return the matching key of one surface word ('' if nothing is left)."""
    folded = word.translate(_TABLE).lower()
    if folded and folded[0].isascii() and folded.isalpha():
        folded = _STEMMER.stemWord(folded)
    return sys.intern(folded)


def keys(text: str) -> list[str]:
    """Return the keys of every word in ``text`` (the query side: no prefix stripping)."""
    return [k for k in map(key, words(text)) if k]


@lru_cache(maxsize=262_144)
def forms(word: str) -> tuple[str, ...]:
    """Return every key a document word is indexed under: its key, then stripped forms."""
    base = key(word)
    if not base:
        return ()
    first = ord(base[0])
    if first in _HEBREW:
        found = [base, *_hebrew_stems(base)]
    elif first in _ARABIC:
        found = [base, *_arabic_stems(base)]
    elif base[0].isascii() and base.isalpha():
        # Prefix queries (``comput*``) compare with the unstemmed word too.
        found = [base, word.translate(_TABLE).lower()]
    else:
        found = [base]
    return tuple(sys.intern(f) for f in dict.fromkeys(found))


@lru_cache(maxsize=65_536)  # publishers, units and statuses repeat from item to item
def name_key(text: str) -> str:
    """Normalise an organisation name, status or tag for comparison.

    Punctuation, spacing, quotes, niqqud and final letters are ignored, and so
    are inner ו/י of Hebrew words, since ministries are written both plene and
    defective (משרד הביטחון, משרד הבטחון).
    """
    return " ".join(_defective(k) for k in map(fold, words(text)) if k)


def code_key(text: str) -> str:
    """Normalise a budget code or prefix to Budget Key digits: 20.40 → 002040."""
    parts = [part for part in re.split(r"[.\s]+", text.strip()) if part]
    if not parts or not all(part.isdigit() for part in parts):
        return ""
    digits = "".join(part.zfill(2) for part in parts) if len(parts) > 1 else parts[0]
    return digits if digits.startswith("00") else "00" + digits


def fold(word: str) -> str:
    """Return the key of ``word`` without stemming (for prefix queries)."""
    return sys.intern(word.translate(_TABLE).lower())


def _defective(word: str) -> str:
    if len(word) < 3 or ord(word[0]) not in _HEBREW:
        return word
    return word[0] + word[1:-1].replace("ו", "").replace("י", "") + word[-1]


def _hebrew_stems(base: str) -> list[str]:
    stems = []
    for size in range(1, min(5, len(base) - 1)):
        if base[:size] in PREFIXES:
            stem = base[size:]
            if len(stem) >= 3 or stem in SHORT_STEMS:
                stems.append(stem)
    return stems


def _arabic_stems(base: str) -> list[str]:
    found = [base[1:]] if base.startswith("و") and len(base) >= 4 else []
    for word in (base, *found):
        for article in _AR_ARTICLES:
            if word.startswith(article) and len(word) - len(article) >= 3:
                found.append(word[len(article) :])
                break
    for word in (base, *found):
        for suffix in _AR_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                found.append(word[: -len(suffix)])
                break
    return found
