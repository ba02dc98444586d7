"""Text analysis: Hebrew niqqud, gershayim, final letters and prefixes; Arabic; English."""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path

import pytest

from agent.rules.analysis import code_key, forms, key, keys, name_key, words


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        pytest.param("שָׁלוֹם", "שלומ", id="niqqud-removed-and-final-mem-folded"),
        pytest.param("בְּרֵאשִׁ֖ית", "בראשית", id="cantillation-removed"),
        pytest.param('צה"ל', "צהל", id="ascii-gershayim-dropped"),
        pytest.param("צה״ל", "צהל", id="hebrew-gershayim-dropped"),
        pytest.param("צה“ל", "צהל", id="curly-quote-gershayim-dropped"),
        pytest.param("ג'ירפה", "גירפה", id="geresh-dropped"),
        pytest.param("ג׳ירפה", "גירפה", id="hebrew-geresh-dropped"),
        pytest.param("ענן", "עננ", id="final-nun-folded"),
        pytest.param("ארץ", "ארצ", id="final-tsadi-folded"),
        pytest.param("דרך", "דרכ", id="final-kaf-folded"),
        pytest.param("סוף", "סופ", id="final-pe-folded"),
        pytest.param("٢٠٢٤", "2024", id="arabic-indic-digits-to-ascii"),
        pytest.param("أحمد", "احمد", id="arabic-hamza-alef-folded"),
        pytest.param("إسرائيل", "اسرائيل", id="arabic-alef-below-folded"),
        pytest.param("وزارة", "وزاره", id="arabic-teh-marbuta-folded"),
        pytest.param("مستشفى", "مستشفي", id="arabic-alef-maksura-folded"),
        pytest.param("مَدْرَسَة", "مدرسه", id="arabic-harakat-removed"),
        pytest.param("مـــدرسة", "مدرسه", id="arabic-tatweel-removed"),
        pytest.param("Services", "servic", id="english-lowercased-and-stemmed"),
        pytest.param("computing", "comput", id="english-stemmed"),
    ],
)
def test_word_key_is_normalised(word: str, expected: str) -> None:
    assert key(word) == expected


def test_maqaf_and_dashes_separate_words() -> None:
    assert words("תל־אביב–יפו - חיפה") == ["תל", "אביב", "יפו", "חיפה"]


def test_underscores_separate_words() -> None:
    assert words("snake_case שם_קובץ plain") == ["snake", "case", "שם", "קובץ", "plain"]


def test_query_side_keys_do_not_strip_prefixes() -> None:
    assert keys("והביטוח לביטוח") == ["והביטוח", "לביטוח"]


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        pytest.param("והביטוח", "ביטוח", id="vav-he"),
        pytest.param("לביטוח", "ביטוח", id="lamed"),
        pytest.param("בביטוח", "ביטוח", id="bet-absorbs-article"),
        pytest.param("שבמשרד", "משרד", id="shin-bet"),
        pytest.param("ושהמשרד", "משרד", id="vav-shin-he"),
        pytest.param("כשהמכרז", "מכרז", id="kaf-shin-he"),
        pytest.param("למבחנים", "מבחנימ", id="lamed-before-mem-word"),
        pytest.param("והשר", "שר", id="two-letter-whitelisted-stem"),
    ],
)
def test_document_words_are_indexed_without_legal_prefixes(word: str, stem: str) -> None:
    assert stem in forms(word)
    assert forms(word)[0] == key(word)


@pytest.mark.parametrize(
    ("word", "not_stem"),
    [
        pytest.param("הבית", "ית", id="short-stem-not-indexed"),
        pytest.param("בהחלט", "חלט", id="bet-he-is-not-a-legal-prefix"),
        pytest.param("לה", "ה", id="tiny-word-does-not-explode"),
    ],
)
def test_illegal_or_short_stems_are_not_indexed(word: str, not_stem: str) -> None:
    assert not_stem not in forms(word)


def test_known_false_positive_of_prefix_stripping_is_documented_behaviour() -> None:
    # שמים (sky) is indexed as ש+מים (water): the price of dictionary-free stripping.
    assert "מימ" in forms("שמים")


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        pytest.param("والمدرسة", "مدرسه", id="waw-and-article"),
        pytest.param("بالمستشفى", "مستشفي", id="bi-article"),
        pytest.param("للوزارة", "وزاره", id="lil-article"),
        pytest.param("المدارس", "مدارس", id="article"),
        pytest.param("معلمات", "معلم", id="feminine-plural-suffix"),
    ],
)
def test_arabic_document_words_are_light_stemmed(word: str, stem: str) -> None:
    assert stem in forms(word)


def test_english_document_words_keep_the_plain_form_for_prefix_queries() -> None:
    assert forms("Computing") == ("comput", "computing")


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param("משרד הביטחון", "משרד הבטחון", id="plene-and-defective-spelling"),
        pytest.param("משרד הביטחון", "משרד  הביטחון.", id="spacing-and-punctuation"),
        pytest.param('משהב"ט', "משהב״ט", id="gershayim-variants"),
        pytest.param("משרד הבריאות", "מִשְׂרַד הַבְּרִיאוּת", id="niqqud"),
        pytest.param("Ministry of Health", "ministry  of health", id="english-case"),
    ],
)
def test_organisation_names_compare_equal_after_normalising(left: str, right: str) -> None:
    assert name_key(left) == name_key(right)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("20.40", "002040", id="dotted-programme"),
        pytest.param("2040", "002040", id="bare-programme"),
        pytest.param("0020.40", "002040", id="budget-key-dotted"),
        pytest.param("00204001", "00204001", id="budget-key-item"),
        pytest.param("20.4.1", "00200401", id="short-parts-padded"),
        pytest.param("abc", "", id="not-a-code"),
    ],
)
def test_budget_codes_normalise_to_budget_key_digits(code: str, expected: str) -> None:
    assert code_key(code) == expected


def _tender_titles(fixtures: Path) -> list[str]:
    titles = []
    for page in (fixtures / "budgetkey" / "tenders").glob("*.html"):
        found = re.findall(r"officetender\.aspx\?pID=\d+'>([^<]+)<", page.read_text("utf-8"))
        titles += [html.unescape(title) for title in found]
    return titles


def test_real_tender_titles_analyse_with_gershayim_and_prefixes(fixtures: Path) -> None:
    titles = _tender_titles(fixtures)
    assert len(titles) >= 5
    title = next(t for t in titles if "פסיכולוגית" in t)
    analysed = {k for word in words(title) for k in forms(word)}
    assert "המ" in analysed  # ה"מ, the gershayim dropped
    assert "שירותי" in analysed
    assert "פסיכולוגית" in analysed
    assert "חירומ" in analysed  # במצבי חירום: final mem folded


def test_real_support_criteria_titles_index_words_behind_prefixes(fixtures: Path) -> None:
    path = next((fixtures / "budgetkey" / "support-criteria").glob("*.csv"))
    with path.open(encoding="utf-8") as rows:
        titles = [row["title"] for row in csv.DictReader(rows)]
    analysed = [{k for word in words(title) for k in forms(word)} for title in titles]
    # "למבחנים" and "ולמבחנים" reach the query word מבחנים; "בבתי חולים" reaches בתי.
    assert sum("מבחנימ" in found for found in analysed) > 10
    assert any("בתי" in found and "בבתי" in found for found in analysed)


def test_real_budget_change_programme_names_normalise(fixtures: Path) -> None:
    path = next((fixtures / "budgetkey" / "budget-changes").glob("*.csv"))
    with path.open(encoding="utf-8") as rows:
        names = {row["שם תוכנית"] for row in csv.DictReader(rows)}
    assert name_key("נשיאי המדינה לשעבר") in {name_key(name) for name in names}
    assert all(name_key(name) == name_key(name_key(name)) for name in names)
