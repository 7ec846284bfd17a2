"""Query parameters of the list endpoints, read through serializers: an id that is not a
whole number, an unknown state, a flag that is neither true nor false or text with control
characters answers 400 with a message per parameter (never a 500, never a silently ignored
filter). The same serializers declare the parameters in the OpenAPI schema
(`extend_schema(parameters=[ThatSerializer])`)."""
from django.core.validators import ProhibitNullCharactersValidator
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from catalog.jobs import JobStatus
from catalog.selectors import PHOTO_STATUSES

#: Printable text only: no title, SKU or handle holds a control character. (A NUL, which
#: cannot even reach PostgreSQL, has its own message: DRF's CharField refuses it first.)
PRINTABLE = r"^[^\x01-\x1f\x7f]*$"
NUL_MESSAGE = "Search for printable text: a NUL character cannot be part of a title, SKU or handle."


def validated_query(serializer_class, request) -> dict:
    """The request's query parameters checked by `serializer_class`; a 400 names each bad one.
    An empty id, state or flag (`?status=`) is refused too: DRF would read it as absent and
    drop the filter without a word."""
    query = serializer_class(data=request.query_params)
    errors = {}
    for name, field in query.fields.items():
        if request.query_params.get(name) == "" and not isinstance(field, serializers.CharField):
            errors[name] = [f"Give {name} a value, or leave it out."]
    if not query.is_valid():
        errors = {**query.errors, **errors}
    if errors:
        raise ValidationError(errors)
    return query.validated_data


class IdParameter(serializers.IntegerField):
    """A row id in a query string: a whole number of 1 or more."""

    default_error_messages = {
        "invalid": "Use the id of a row: a whole number.",
        "min_value": "Use the id of a row: a whole number of 1 or more.",
        "max_string_length": "That is not an id: it is far too long.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("min_value", 1)
        super().__init__(**kwargs)


class FlagParameter(serializers.BooleanField):
    default_error_messages = {"invalid": "Use true or false."}

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", False)
        super().__init__(**kwargs)


class SearchParameter(serializers.RegexField):
    """Free text to search for: printable, at most 200 characters. `?search=` is no search
    (the pattern takes ""; `allow_blank` would make the schema a `oneOf` that "" matches twice)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 200)
        kwargs.setdefault("error_messages", {
            "invalid": "Search for printable text: control characters (such as a tab) cannot be part of a title, SKU or handle.",
            "max_length": "Search for at most 200 characters.",
        })
        super().__init__(PRINTABLE, **kwargs)
        # DRF's own NUL check speaks of "Null characters"; say it in the same words as the rest.
        self.validators = [
            ProhibitNullCharactersValidator(message=NUL_MESSAGE) if isinstance(v, ProhibitNullCharactersValidator) else v
            for v in self.validators
        ]


#: `search` in the schema: "" (no search) included, which the serializer field would declare
#: with minLength 1.
SEARCH_SCHEMA = {"type": "string", "maxLength": 200, "pattern": PRINTABLE}


class ProductListQuery(serializers.Serializer):
    search = SearchParameter(help_text="Only products whose title, SKU or handle contains this text (case-insensitive).")


class PhotoListQuery(serializers.Serializer):
    product = IdParameter(help_text="Only this product's photos.")
    unassigned = FlagParameter(help_text="Only photos not yet attached to a product.")
    status = serializers.ChoiceField(
        choices=PHOTO_STATUSES, required=False,
        help_text="Only photos in this state: processing (a job runs; includes photos still `checking`), failed (the newest "
        "job of a kind failed, or the photo could not be decoded), ready.",
    )


class JobListQuery(serializers.Serializer):
    photo = IdParameter(help_text="Only this photo's jobs.")
    status = serializers.ChoiceField(choices=JobStatus.choices, required=False, help_text="Only jobs in this state.")
