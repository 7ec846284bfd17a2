"""Prompt assembly from a scene preset, a brand kit and the merchant's own words (each
as the plain snapshot a generation plan keeps)."""
from __future__ import annotations

import re


class BannedTerm(ValueError):
    def __init__(self, term: str):
        super().__init__(f"The prompt uses '{term}', which this brand kit does not allow. Reword it and try again.")
        self.term = term


def banned_term_in(text: str, banned: list[str]) -> str | None:
    """The first banned term `text` contains as a whole word or phrase (case-insensitive)."""
    for term in banned:
        term = term.strip()
        if term and re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, flags=re.IGNORECASE):
            return term
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
