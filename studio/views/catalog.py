"""The catalog pages: products (the grid, a new one, one product with its photos, edit,
delete), the photo grid, and where photos belong (move many, move one, delete one). Pages
read through selectors and write through one service call each."""
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from catalog import selectors
from catalog import services as catalog_services
from studio import services as studio_services

from .base import with_param, workspace_page

#: The photo grid shows the newest this many photos.
GRID_LIMIT = 200


# Forms (they only parse the page; the catalog's services check what needs the database) ------

#: The value of "No product" in the product selects (attached to no product).
NO_PRODUCT = "none"


class ProductForm(forms.Form):
    title = forms.CharField(max_length=255)
    handle = forms.SlugField(
        max_length=255, required=False, help_text="Leave empty to make it from the title.",
        error_messages={"invalid": "Use only letters, digits, hyphens and underscores in the handle."},
    )
    sku = forms.CharField(label="SKU", max_length=100, required=False)


class ProductChoiceField(forms.Field):
    """A product id, or NO_PRODUCT for "attached to no product" (None)."""

    default_error_messages = {"required": "Choose a product, or “No product”.", "invalid": "Choose a product from the list."}

    def to_python(self, value):
        if value in self.empty_values:
            return ""
        if value == NO_PRODUCT:
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None

    def validate(self, value):
        if value == "":
            raise forms.ValidationError(self.error_messages["required"], code="required")


class PhotoIdsField(forms.Field):
    """The ids of the photos ticked in the grid (checkboxes named `photos`)."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"required": "Select at least one photo to move.", "invalid": "Select photos from the grid."}

    def to_python(self, value):
        try:
            return [int(pk) for pk in value or []]
        except (TypeError, ValueError):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class PhotosMoveForm(forms.Form):
    photos = PhotoIdsField()
    product = ProductChoiceField()


class PhotoMoveForm(forms.Form):
    product = ProductChoiceField()


class PhotoDeleteForm(forms.Form):
    delete_assets = forms.BooleanField(required=False)
    delete_approved = forms.BooleanField(required=False)


class GridFilterForm(forms.Form):
    """The query string of the products page and its photo grid. A value that cannot be used
    gets a message on the page (and a 400), and the page shows everything instead."""

    product = forms.CharField(required=False)
    status = forms.ChoiceField(
        required=False, choices=[("", "All"), *((value, value) for value in selectors.PHOTO_STATUSES)],
        error_messages={"invalid_choice": f"Filter photos by one of: {', '.join(selectors.PHOTO_STATUSES)}."},
    )
    q = forms.CharField(
        required=False, max_length=200,
        validators=[RegexValidator(r"^[^\x01-\x1f\x7f]*$", "Search for printable text: control characters cannot be part of a title, SKU or handle.")],
        error_messages={"null_characters_not_allowed": "Search for printable text: a NUL character cannot be part of a title, SKU or handle."},
    )

    def clean_product(self):
        value = self.cleaned_data["product"]
        if value in ("", NO_PRODUCT):
            return value or None
        if not (value.isascii() and value.isdigit()):
            raise forms.ValidationError(f"“{value[:40]}” is not a product: choose one from the list.")
        return int(value)


def grid_filters(request) -> tuple[dict, str | None]:
    """The grid's filters from the query string, and what was wrong with them (None: nothing)."""
    form = GridFilterForm(request.GET)
    if form.is_valid():
        return form.cleaned_data, None
    problems = " ".join(message for messages_ in form.errors.values() for message in messages_)
    return {"product": None, "status": "", "q": ""}, problems


def _product_filter(filters: dict, product) -> int | str | None:
    """Whose photos the grid shows: a product's id, NO_PRODUCT (attached to none), or None (all)."""
    if product is not None:
        return product.pk
    return filters["product"]


def _grid_context(request, *, product=None, filters: dict | None = None) -> dict:
    filters = filters if filters is not None else grid_filters(request)[0]
    shown = _product_filter(filters, product)
    status = filters["status"] or None
    photos = list(
        selectors.photo_list(
            workspace=request.workspace,
            product_id=shown if isinstance(shown, int) else None,
            unassigned=shown == NO_PRODUCT,
            status=status,
        )[:GRID_LIMIT]
    )
    # The grid refreshes itself from its own URL; on a product's page that URL names the product.
    query = request.GET.copy()
    if product is not None:
        query["product"] = str(product.pk)
    return {
        "photos": photos,
        "processing": any(photo.status in ("processing", "checking") for photo in photos),
        "grid_query": query.urlencode(),
        "grid_product": "" if shown is None else str(shown),
        "status": status,
        "status_links": [(value, label, with_param(request, "status", value)) for value, label in (
            (None, "All"), ("processing", "Processing"), ("failed", "Needs attention"), ("ready", "Ready"))],
    }


def _back(request, default: str) -> str:
    """Where a form posted from a page sends the person back to (only this site's pages)."""
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def _form_errors_from(form, exc: ValidationError) -> None:
    """Put a service's ValidationError next to the field it names (else above the form)."""
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _chosen_product(request, value):
    """The product a move form chose (None: no product); another workspace's answers 404."""
    return None if value is None else selectors.product_get(workspace=request.workspace, product_id=value)


def _photos(count: int) -> str:
    return f"{count} photo{'' if count == 1 else 's'}"


# Products ----------------------------------------------------------------------------------


@workspace_page
def products(request):
    filters, filter_error = grid_filters(request)
    if filter_error:
        messages.error(request, f"These filters could not be used: {filter_error} Showing every product and photo instead.", extra_tags="")
    context = _grid_context(request, filters=filters)
    context["products"] = list(selectors.product_list_with_cover(workspace=request.workspace, search=filters["q"] or None))
    # A search narrows the whole page: the catalog and the product selects alike.
    context["all_products"] = context["products"]
    context["max_upload_mb"] = settings.VITRINE_UPLOAD_MAX_BYTES // (1024 * 1024)
    context["nav"] = "products"
    return render(request, "studio/products.html", context, status=400 if filter_error else 200)


@workspace_page
def product_new(request):
    """Title, handle (made from the title when empty) and SKU; errors next to their field."""
    form = ProductForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            product = catalog_services.product_create(workspace=request.workspace, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors_from(form, exc)
        else:
            messages.success(request, f"Created {product.title}. Drop its photos on this page, or move photos here from the Products page.")
            return redirect("product-detail", product_id=product.pk)
    return render(request, "studio/product_new.html", {"form": form, "nav": "products"}, status=400 if form.is_bound else 200)


@workspace_page
def product_detail(request, product_id: int):
    """One product: its photos (movable elsewhere) and its fields (a POST saves them)."""
    product = selectors.product_get(workspace=request.workspace, product_id=product_id)
    form = ProductForm(
        request.POST if request.method == "POST" else None,
        initial={"title": product.title, "handle": product.handle, "sku": product.sku},
    )
    if request.method == "POST" and form.is_valid():
        try:
            catalog_services.product_update(product=product, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors_from(form, exc)
            # The service set the refused values on the instance; the page shows what is saved.
            product = selectors.product_get(workspace=request.workspace, product_id=product_id)
        else:
            messages.success(request, "Saved.")
            return redirect("product-detail", product_id=product.pk)
    context = _grid_context(request, product=product)
    context.update(
        product=product,
        form=form,
        all_products=list(selectors.product_list(workspace=request.workspace)),
        nav="products",
    )
    return render(request, "studio/product.html", context, status=400 if form.is_bound else 200)


@workspace_page
def product_delete(request, product_id: int):
    """A confirmation that says what happens to the product's photos; a POST deletes it."""
    product = selectors.product_get(workspace=request.workspace, product_id=product_id)
    photo_count = selectors.photo_list(workspace=request.workspace, product_id=product.pk).count()
    if request.method == "POST":
        catalog_services.product_delete(product=product)
        messages.success(
            request, f"Deleted {product.title}. Its {_photos(photo_count)} stayed in the library, attached to no product."
        )
        return redirect(reverse("products") + f"?product={NO_PRODUCT}" if photo_count else reverse("products"))
    return render(request, "studio/product_delete.html", {"product": product, "photo_count": photo_count, "nav": "products"})


# Where photos belong -----------------------------------------------------------------------


@workspace_page
def photo_grid(request):
    # The grid refreshes itself with the page's own query string, whose faults the page
    # already reported: here a filter that cannot be used shows every photo.
    filters, _ = grid_filters(request)
    return render(request, "studio/_photo_grid.html", _grid_context(request, filters=filters))


@workspace_page
@require_POST
def photos_move(request):
    """Move the photos ticked in the grid to one product (or to none), all or none."""
    back = _back(request, reverse("products"))
    form = PhotosMoveForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, errors[0], extra_tags="photos")
        return redirect(back)
    product = _chosen_product(request, form.cleaned_data["product"])
    moved = catalog_services.photos_assign(workspace=request.workspace, photo_ids=form.cleaned_data["photos"], product=product)
    if product is None:
        messages.success(request, f"Detached {_photos(len(moved))}: they are in the library, attached to no product.", extra_tags="photos")
    else:
        messages.success(request, f"Moved {_photos(len(moved))} to {product.title}.", extra_tags="photos")
    return redirect(back)


@workspace_page
@require_POST
def photo_move(request, photo_id: int):
    """Move one photo (its page's product select) to another product, or to none."""
    photo = selectors.photo_get(workspace=request.workspace, photo_id=photo_id)
    form = PhotoMoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors["product"][0], extra_tags="photo")
        return redirect("photo-detail", photo_id=photo.pk)
    product = _chosen_product(request, form.cleaned_data["product"])
    catalog_services.photo_assign(photo=photo, product=product)
    messages.success(request, f"Moved to {product.title}." if product else "Detached: attached to no product.", extra_tags="photo")
    return redirect("photo-detail", photo_id=photo.pk)


@workspace_page
def photo_delete(request, photo_id: int):
    """What deleting the photo takes along, then (POST) the delete. Generated images need a
    tick; approved ones not yet published need a second one, asked for when refused."""
    photo = selectors.photo_get(workspace=request.workspace, photo_id=photo_id)
    form = PhotoDeleteForm(request.POST if request.method == "POST" else None)
    refusal = None
    if request.method == "POST" and form.is_valid():
        try:
            studio_services.photo_remove(photo=photo, **form.cleaned_data)
        except studio_services.PhotoHasAssets as exc:
            refusal = {"kind": "assets", "count": exc.count}
        except studio_services.PhotoHasApprovedAssets as exc:
            refusal = {"kind": "approved", "count": exc.count, "message": exc.message}
        else:
            messages.success(request, f"Deleted {photo.original_name}.", extra_tags="photos")
            return redirect("product-detail", product_id=photo.product_id) if photo.product_id else redirect("products")
    context = {
        "photo": photo,
        "removal": studio_services.photo_removal_summary(photo=photo),
        "form": form,
        "refusal": refusal,
        # Asked once a delete was refused for them, or when the person already ticked it.
        "ask_approved": bool(refusal and refusal["kind"] == "approved") or bool(form.is_bound and form.cleaned_data.get("delete_approved")),
        "nav": "products",
    }
    return render(request, "studio/photo_delete.html", context, status=409 if refusal else 200)
