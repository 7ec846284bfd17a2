"""Banned terms are matched as a reader reads them: Unicode-normalised, case-folded, with
invisible characters removed and simple English plurals and possessives caught."""
import pytest

from generation.prompts import BannedTerm, banned_term_in, build_prompts, normalise_text


@pytest.mark.parametrize(
    ("text", "banned", "found"),
    [
        ("a knife on the table", ["knife"], "knife"),
        ("KNIFE", ["knife"], "knife"),
        ("two knives", ["knife"], "knife"),
        ("knifes and forks", ["knife"], "knife"),
        ("the knife's edge", ["knife"], "knife"),
        ("the knife’s edge", ["knife"], "knife"),  # typographic apostrophe
        ("the knives' handles", ["knife"], "knife"),
        ("kni\u200bfe", ["knife"], "knife"),  # zero-width space
        ("kni\u00adfe", ["knife"], "knife"),  # soft hyphen
        ("k\u200dnife", ["knife"], "knife"),  # zero-width joiner
        ("ｋｎｉｆｅ", ["knife"], "knife"),  # full-width letters (NFKC)
        ("two cups of tea", ["cup"], "cup"),
        ("boxes", ["box"], "box"),
        ("fresh berries", ["berry"], "berry"),
        ("wolves at night", ["wolf"], "wolf"),
        ("STRASSE", ["straße"], "straße"),  # case folding, not lower()
        ("real-leather bag", ["real leather"], "real leather"),
        ("real   leather bags", ["real leather"], "real leather"),
        ("cheap mug", ["  Cheap  ", "mug"], "Cheap"),
        ("a mug", ["cheap", "mug"], "mug"),
    ],
)
def test_a_banned_term_is_found_however_it_is_written(text, banned, found):
    assert banned_term_in(text, banned) == found


@pytest.mark.parametrize(
    ("text", "banned"),
    [
        ("a cupboard", ["cup"]),
        ("a pocketknife", ["knife"]),
        ("scarfed", ["scarf"]),
        ("leather", ["real leather"]),
        ("real, fake leather", ["real leather"]),
        ("nothing here", ["", "   "]),
        ("", ["knife"]),
    ],
)
def test_words_that_only_contain_a_banned_term_are_not_refused(text, banned):
    assert banned_term_in(text, banned) is None


def test_normalised_text_drops_invisible_characters_and_folds_case():
    assert normalise_text("Ｋni\u200bFE\u2019S") == "knife's"


def test_build_prompts_refuses_the_merchants_words_with_a_banned_term():
    with pytest.raises(BannedTerm) as info:
        build_prompts(preset={"prompt": "marble"}, brand_kit={}, user_prompt="Two KNIVES", banned_terms=["knife"])

    assert str(info.value) == "The prompt uses 'knife', which this brand kit does not allow. Reword it and try again."


def test_build_prompts_puts_the_merchants_words_first():
    assert build_prompts(
        preset={"prompt": "marble table", "negative_prompt": "blur"}, brand_kit={"prompt_fragment": "warm light", "default_negative_prompt": "text"},
        user_prompt=" lemons ", banned_terms=["knife"],
    ) == ("lemons, marble table, warm light", "blur, text")
