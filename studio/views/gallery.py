"""The gallery (every delivered image of the workspace, filtered, selected, downloaded as a ZIP
or submitted for review), one image's page with its recipe, review rounds, comments and full
history, and the workspace's audit trail as CSV. Reads go through `studio.selectors`, writes
through one service call each (`studio.reviews`, `studio.services`); files come from
`studio.downloads`."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from brand import selectors as brand_selectors
from catalog import selectors as catalog_selectors
from studio import reviews
from studio import selectors as studio_selectors
from studio import services as studio_services
from studio.downloads import assets_zip, audit_csv_lines
from studio.models import AuditVerb, ReviewState

from .base import DECIDERS, asset_before_style, error_text, role_page, with_param, workspace_page

PAGE_SIZE = 48
#: The most images one ZIP holds (the API's download takes as many): a bigger archive takes
#: minutes to build inside one request, so larger sets go out in several downloads.
ZIP_LIMIT = 500
GATE_CHOICES = (("pass", "All gates pass"), ("fail", "A gate fails"))
#: Steps Vitrine takes by itself: an event of these with no person is the system's.
AUTOMATIC_VERBS = {AuditVerb.CUTOUT_MADE, AuditVerb.ASSET_GENERATED}


def asset_label(asset) -> str:
    """How a person names one image in a message: its product (or photo), channel, variant."""
    product = asset.photo.product.title if asset.photo.product_id else asset.photo.original_name
    return f"Image {asset.pk} ({product}, {asset.channel}, variant {asset.variant + 1})"


def gate_summary(asset) -> tuple[str, str]:
    """The gates in a few words for a card, and its status (pass / warn / fail / none)."""
    if not asset.gates:
        return "No gate results", "none"
    failing = sum(1 for gate in asset.gates if gate["status"] == "fail")
    warnings = sum(1 for gate in asset.gates if gate["status"] == "warn")
    if failing:
        return f"{failing} gate{'s' if failing > 1 else ''} fail{'' if failing > 1 else 's'}", "fail"
    if warnings:
        return f"All gates pass ({warnings} warning{'s' if warnings > 1 else ''})", "warn"
    return "All gates pass", "pass"


def _back_to_gallery(request):
    # The filters travel in the form as a query string; re-encoding it keeps the redirect on
    # this site whatever was posted.
    query = QueryDict(request.POST.get("query", "")).urlencode()
    return redirect(f"{reverse('gallery')}?{query}" if query else reverse("gallery"))


# Gallery ---------------------------------------------------------------------------------


@workspace_page
def gallery(request):
    """Every delivered image of the workspace, newest job first, 48 a page, narrowed by
    product, preset, channel, review state and gate result."""
    filter_error = None
    try:
        filters = studio_selectors.AssetFilters.from_query(request.GET)
    except ValidationError as exc:
        filters, filter_error = studio_selectors.AssetFilters(), error_text(exc)
    assets = studio_selectors.asset_list(workspace=request.workspace, filters=filters)
    page = Paginator(assets, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    for asset in page.object_list:
        asset.gate_words, asset.gate_status = gate_summary(asset)
    everything = studio_selectors.asset_list(workspace=request.workspace)
    channels = sorted(set(everything.order_by().values_list("channel", flat=True).distinct()) | ({filters.channel} if filters.channel else set()))
    filtered = any(value is not None for value in filters.__dict__.values())
    context = {
        "page": page,
        "filters": filters,
        "filtered": filtered,
        "filter_error": filter_error,
        "products": catalog_selectors.product_list(workspace=request.workspace),
        "presets": brand_selectors.preset_list(workspace=request.workspace),
        "channels": channels,
        "states": ReviewState.choices,
        "gate_choices": GATE_CHOICES,
        "previous_url": with_param(request, "page", str(page.previous_page_number())) if page.has_previous() else None,
        "next_url": with_param(request, "page", str(page.next_page_number())) if page.has_next() else None,
        "query": request.GET.urlencode(),
        "can_download_audit": request.membership.role in DECIDERS,
        "zip_limit": ZIP_LIMIT,
        "flash": request.session.pop("gallery_flash", None),
        "nav": "gallery",
    }
    return render(request, "studio/gallery/gallery.html", context, status=400 if filter_error else 200)


def _selected(request) -> list:
    """The chosen images of the caller's workspace; refusals are ValidationErrors whose words
    go back to the gallery, and an id of another workspace is a 404 (nothing is done)."""
    ids = request.POST.getlist("ids")
    if not ids:
        raise ValidationError("Select one or more images first: tick the box on each card, or “Select all on this page”.")
    if len(set(ids)) > ZIP_LIMIT:
        raise ValidationError(
            f"You selected {len(set(ids)):,} images; one ZIP holds at most {ZIP_LIMIT}. Narrow the gallery with the filters "
            "and download in several parts."
        )
    return studio_selectors.assets_get(workspace=request.workspace, asset_ids=ids)


@workspace_page
@require_POST
def gallery_download(request):
    """The selected images as one ZIP (PNGs, manifest.csv, manifest.json)."""
    try:
        assets = _selected(request)
    except ValidationError as exc:
        request.session["gallery_flash"] = {"error": error_text(exc)}
        return _back_to_gallery(request)
    filename = f"vitrine-{request.workspace.slug}-{len(assets)}-image{'s' if len(assets) > 1 else ''}.zip"
    return FileResponse(assets_zip(assets), as_attachment=True, filename=filename, content_type="application/zip")


@workspace_page
@require_POST
def gallery_submit(request):
    """Submit the selected images for review; the gallery then says how many went and why
    each other one did not."""
    try:
        result = reviews.reviews_submit(assets=_selected(request), actor=request.user)
    except (ValidationError, PermissionDenied) as exc:
        request.session["gallery_flash"] = {"error": error_text(exc)}
        return _back_to_gallery(request)
    request.session["gallery_flash"] = {
        "submitted": len(result.done),
        "skipped": [{"id": asset.pk, "label": asset_label(asset), "reason": why} for asset, why in result.skipped],
    }
    return _back_to_gallery(request)


# One image -------------------------------------------------------------------------------


def _detail_text(event) -> str:
    """One audit event's detail in words, for the history table."""
    d = event.detail or {}
    verb = event.verb
    if verb == AuditVerb.PHOTO_UPLOADED:
        return f"{d.get('name', 'Photo')} ({d.get('bytes', 0):,} bytes), sha256 {d.get('sha256', '')[:12]}…"
    if verb.startswith("cutout."):
        parts = [f"Revision {d.get('revision', event.cutout.revision if event.cutout else '?')}", f"by {d.get('backend', 'the segmenter')}"]
        if d.get("confident") is False:
            parts.append("the segmenter was not sure of the outline")
        return ", ".join(parts)
    if verb == AuditVerb.ASSET_GENERATED:
        parts = [f"Model {d.get('model', '?')}"]
        if d.get("preset"):
            parts.append(f"preset {d['preset']} v{d.get('preset_version', '?')}")
        if d.get("brand_kit"):
            parts.append(f"brand kit {d['brand_kit']} v{d.get('brand_kit_version', '?')}")
        parts += [f"seed {d.get('seed', '?')}", f"channel {d.get('channel', '?')}", f"cutout revision {d.get('cutout_revision', '?')}"]
        if d.get("regenerated_from"):
            parts.append(f"regenerated from image {d['regenerated_from']}")
        return ", ".join(parts)
    parts = []
    if d.get("automatic"):
        parts.append(f"Automatically: {d['automatic']}")
    if d.get("comment"):
        parts.append(f"“{d['comment']}”")
    if d.get("override_reason"):
        parts.append(f"Override of failing gates ({', '.join(d.get('overridden') or [])}): “{d['override_reason']}”")
    if verb == AuditVerb.REVIEW_APPROVED and d.get("sha256"):
        parts.append(f"pinned sha256 {d['sha256'][:12]}…, cutout revision {d.get('cutout_revision', '?')}")
    known = {"automatic", "comment", "override_reason", "overridden", "sha256", "cutout_revision"}
    parts += [f"{key}: {value}" for key, value in sorted(d.items()) if key not in known and value not in (None, "", [])]
    return "; ".join(parts)


def _actor_text(event) -> str:
    if event.actor_email:
        return event.actor_email
    return "Vitrine (automatic)" if event.verb in AUTOMATIC_VERBS else "Not recorded"


def _lock_badge(asset) -> dict:
    """The pixel-lock gate as the page's lock badge: its own words (they say whether the
    product was resized), never a count alone."""
    gate = next((g for g in asset.gates if g["name"] == "lock"), None)
    if gate is not None:
        return {"status": gate["status"], "text": gate["reason"]}
    cert = asset.lock_certificate
    changed = int(cert.get("changed_pixels", 0))
    return {
        "status": "pass" if changed == 0 and cert.get("passed", True) else "fail",
        "text": f"Made before QA gates existed: {changed:,} of {int(cert.get('locked_pixels', 0)):,} product pixels changed.",
    }


def _asset_context(request, asset, **extra) -> dict:
    asset.before_style = asset_before_style(asset)
    plan = asset.recipe.get("plan", {})
    events = list(studio_selectors.asset_history(asset=asset))
    flash = request.session.get("asset_flash")
    if flash and flash.get("asset") == asset.pk:
        request.session.pop("asset_flash")
    else:
        flash = None
    return {
        "asset": asset,
        "lock": _lock_badge(asset),
        "plan": plan,
        "preset": plan.get("preset", {}),
        "brand_kit": plan.get("brand_kit", {}),
        "cutout_revision": asset.recipe.get("cutout", {}).get("revision", asset.cutout.revision),
        "rounds": list(studio_selectors.asset_reviews(asset=asset)),
        "comments": list(studio_selectors.asset_comments(asset=asset)),
        "history": [{"event": e, "actor": _actor_text(e), "text": _detail_text(e)} for e in events],
        "can_submit": asset.review_state in reviews.SUBMITTABLE,
        "label": asset_label(asset),
        "flash": flash,
        "nav": "gallery",
        **extra,
    }


@workspace_page
def asset_detail(request, asset_id: int):
    """One image: before/after, lock badge and gates, recipe, review rounds, comments, history."""
    asset = studio_selectors.asset_get(workspace=request.workspace, asset_id=asset_id)
    return render(request, "studio/gallery/asset.html", _asset_context(request, asset))


def _flash_asset(request, asset, **values):
    request.session["asset_flash"] = {"asset": asset.pk, **values}
    return redirect("asset-detail", asset_id=asset.pk)


@workspace_page
@require_POST
def asset_comment(request, asset_id: int):
    """Add to the image's comment thread; a refused comment comes back with its words kept."""
    asset = studio_selectors.asset_get(workspace=request.workspace, asset_id=asset_id)
    body = request.POST.get("body", "")
    try:
        reviews.asset_comment_add(asset=asset, actor=request.user, body=body)
    except (ValidationError, PermissionDenied) as exc:
        context = _asset_context(request, asset, comment_error=error_text(exc), comment_body=body)
        return render(request, "studio/gallery/asset.html", context, status=400)
    return redirect(f"{reverse('asset-detail', args=[asset.pk])}#comments")


@workspace_page
@require_POST
def asset_submit(request, asset_id: int):
    """Put this image in front of the brand managers."""
    asset = studio_selectors.asset_get(workspace=request.workspace, asset_id=asset_id)
    try:
        reviews.review_submit(asset=asset, actor=request.user, comment=request.POST.get("comment", ""))
    except (ValidationError, PermissionDenied, reviews.ReviewConflict) as exc:
        return _flash_asset(request, asset, error=error_text(exc))
    return _flash_asset(request, asset, success="Submitted for review. The brand managers have been notified.")


@workspace_page
@require_POST
def asset_regenerate(request, asset_id: int):
    """Replay the image's recipe as a new job; the page then links to its progress."""
    asset = studio_selectors.asset_get(workspace=request.workspace, asset_id=asset_id)
    try:
        job = studio_services.asset_regenerate(asset=asset, user=request.user)
    except ValidationError as exc:
        return _flash_asset(request, asset, error=error_text(exc))
    return _flash_asset(request, asset, regenerated_job=job.pk)


# Audit trail -----------------------------------------------------------------------------


@role_page(*DECIDERS)
def audit_csv(request):
    """The workspace's whole audit trail as CSV, streamed one event a line."""
    lines = audit_csv_lines(studio_selectors.audit_list(workspace=request.workspace))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="vitrine-{request.workspace.slug}-audit.csv"'
    return response
