from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """Page-number pages whose parameters are checked: `page` and `page_size` that are not
    whole numbers in range answer 400 with a field message (DRF would silently use its
    default size or answer 404). A page past the last is still 404."""

    page_size_query_param = "page_size"
    max_page_size = 200
    #: `?page=last` is not offered: the schema says `page` is a number.
    last_page_strings = ()

    def _whole_number(self, request, name: str, *, maximum: int | None = None) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        text = raw.strip()
        if not (text.isascii() and text.isdigit()) or int(text) < 1 or (maximum is not None and int(text) > maximum):
            upper = f" from 1 to {maximum}" if maximum is not None else " of 1 or more"
            raise ValidationError({name: [f"'{raw[:40]}' is not a valid {name}: use a whole number{upper}."]})
        return int(text)

    def paginate_queryset(self, queryset, request, view=None):
        self._whole_number(request, self.page_query_param)
        self._whole_number(request, self.page_size_query_param, maximum=self.max_page_size)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters
