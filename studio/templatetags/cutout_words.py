"""`{{ cutout.notes|note_words }}`: a cutout's machine-readable notes as sentences.

The words live in one place, :data:`generation.segmentation.base.NOTE_TEXT` (the review gates
use them too)."""
from django import template

from generation.segmentation.base import describe_notes

register = template.Library()


@register.filter
def note_words(notes):
    """The notes of a cutout in a merchant's words (an empty list for none)."""
    return describe_notes(notes or ())
