"""Prompt assembly from a scene preset, a brand kit and the merchant's own words (each
as the plain snapshot a generation plan keeps)."""
from __future__ import annotations

import re
import unicodedata


class BannedTerm(ValueError):
    def __init__(self, term: str):
        super().__init__(f"The prompt uses '{term}', which this brand kit does not allow. Reword it and try again.")
        self.term = term


# Typographic apostrophes people (and phone keyboards) type for "'".
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\uff07": "'"})
# Between the words of a phrase: any run of spaces, hyphens or underscores.
_JOINER = r"[\s\-_]+"


def normalise_text(text: str) -> str:
    """`text` as banned terms are compared: Unicode NFKC (full-width and ligature letters
    become plain ones), invisible format characters removed (zero-width spaces and joiners,
    soft hyphens, bidi marks: they split a word for a regex but not for a reader), case
    folded, typographic apostrophes made plain."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    # casefold can produce text that is no longer NFKC (e.g. "ß" → "ss" is fine, but some
    # compatibility letters fold to sequences), so normalise once more.
    return unicodedata.normalize("NFKC", text.casefold()).translate(_APOSTROPHES)


def _word_forms(word: str) -> list[str]:
    """Simple English inflections of a noun: knife → knifes, knives; cup → cups;
    berry → berries; box → boxes. Longest first, so the regex prefers the whole word."""
    forms = {word, word + "s", word + "es"}
    if word.endswith("fe"):
        forms.add(word[:-2] + "ves")
    elif word.endswith("f"):
        forms.add(word[:-1] + "ves")
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        forms.add(word[:-1] + "ies")
    return sorted(forms, key=lambda form: (-len(form), form))


def _term_pattern(term: str) -> re.Pattern | None:
    words = normalise_text(term).split()
    if not words:
        return None
    *head, last = words
    # The last word may take a plural and a possessive ("knife" catches "knives'" and
    # "knife's"); the words before it are matched as written.
    stem = "".join(re.escape(w) + _JOINER for w in head)
    last_forms = "|".join(re.escape(form) for form in _word_forms(last))
    return re.compile(rf"(?<!\w){stem}(?:{last_forms})(?:'s|')?(?!\w)")


def banned_term_in(text: str, banned: list[str]) -> str | None:
    """The first of `banned` that `text` contains as a whole word or phrase, as the brand
    wrote it; ``None`` when none.

    Both sides are compared normalised (:func:`normalise_text`: NFKC, case folded, zero-width
    characters removed), words of a phrase may be joined by any spaces or hyphens, and the
    last word of a term also matches its simple English plural and possessive forms, so a ban
    on "knife" catches "KNIVES", "knife's", and "knife" with a zero-width space inside it."""
    haystack = normalise_text(text)
    for term in banned:
        pattern = _term_pattern(term)
        if pattern is not None and pattern.search(haystack):
            return term.strip()
    return None


def build_prompts(*, preset: dict, brand_kit: dict, user_prompt: str, banned_terms: list[str]) -> tuple[str, str]:
    """(prompt, negative prompt): user text first (it matters most), then the preset's scene,
    then the brand's fragment; negatives from the preset and the brand kit."""
    if term := banned_term_in(user_prompt, banned_terms):
        raise BannedTerm(term)
    parts = [user_prompt.strip(), preset.get("prompt", "").strip(), brand_kit.get("prompt_fragment", "").strip()]
    prompt = ", ".join(p for p in parts if p)
    negatives = [preset.get("negative_prompt", "").strip(), brand_kit.get("default_negative_prompt", "").strip()]
    return prompt, ", ".join(n for n in negatives if n)
