from django import forms

from generation.compose import AS_PHOTO
from generation.preflight import CHANNELS

CHANNEL_CHOICES = [(AS_PHOTO.name, "Photo's own size")] + [(spec.name, spec.title) for spec in CHANNELS.values()]


class ComposeForm(forms.Form):
    """The compose page's fields; the generation service validates the rest."""

    preset = forms.IntegerField(widget=forms.RadioSelect)
    brand_kit = forms.IntegerField()
    prompt = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))
    variants = forms.IntegerField(min_value=1, max_value=8, initial=4)
    channels = forms.MultipleChoiceField(choices=CHANNEL_CHOICES, widget=forms.CheckboxSelectMultiple)
    seed = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1, help_text="Leave empty for a new random seed.")
