"""The review queue (brand managers and owners decide, keyboard first), submitting from a
job's page, and notifications. Decisions go through `studio.reviews`; these views only read
and pass along."""
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from brand import selectors as brand_selectors
from catalog import selectors as catalog_selectors
from studio import reviews
from studio import selectors as studio_selectors

from .base import DECIDERS, asset_before_style, asset_zoom_origin, error_text, role_page, with_param, workspace_page

QUEUE_LIMIT = 200


def _filters(request):
    try:
        return studio_selectors.AssetFilters.from_query(request.GET), None
    except ValidationError as exc:
        return studio_selectors.AssetFilters(), error_text(exc)


@role_page(*DECIDERS)
def review_queue(request):
    filters, filter_error = _filters(request)
    queue = list(studio_selectors.review_queue(workspace=request.workspace, filters=filters)[:QUEUE_LIMIT])
    return render(request, "studio/review/queue.html", {
        "queue": queue,
        "filters": filters,
        "filter_error": filter_error,
        "products": catalog_selectors.product_list(workspace=request.workspace),
        "presets": brand_selectors.preset_list(workspace=request.workspace),
        "channels": sorted({a.channel for a in queue} | ({filters.channel} if filters.channel else set())),
        "gate_links": [(value, label, with_param(request, "gates", value)) for value, label in ((None, "Any"), ("pass", "All gates pass"), ("fail", "A gate fails"))],
        "query": request.GET.urlencode(),
        "flash": request.session.pop("review_flash", None),
        "nav": "review",
    })


def _panel_context(request, asset, **extra) -> dict:
    asset.before_style = asset_before_style(asset)
    zoom_x, zoom_y = asset_zoom_origin(asset)
    open_review = next((r for r in studio_selectors.asset_reviews(asset=asset) if not r.decision), None)
    return {
        "asset": asset,
        "zoom_x": zoom_x,
        "zoom_y": zoom_y,
        "comments": list(studio_selectors.asset_comments(asset=asset)),
        "open_review": open_review,
        "can_decide": request.membership.role in DECIDERS,
        "plan": asset.recipe.get("plan", {}),
        **extra,
    }


@workspace_page
def review_panel(request, asset_id: int):
    """The large preview of one image with its gates, recipe, thread and decision form."""
    asset = studio_selectors.asset_get(workspace=request.workspace, asset_id=asset_id)
    return render(request, "studio/review/_panel.html", _panel_context(request, asset))


@workspace_page
@require_POST
def review_decide(request, asset_id: int):
    """Approve, request changes, reject or comment from the queue. On success the response
    asks the page to move on (HX-Trigger `review-decided`); on refusal it shows why, in place."""
    asset = studio_selectors.asset_get(workspace=request.workspace, asset_id=asset_id)
    action = request.POST.get("action", "")
    comment = request.POST.get("comment", "")
    try:
        if action == "approve":
            reviews.review_approve(asset=asset, actor=request.user, comment=comment, override_reason=request.POST.get("override_reason", ""))
        elif action == "request_changes":
            reviews.review_request_changes(asset=asset, actor=request.user, comment=comment)
        elif action == "reject":
            reviews.review_reject(asset=asset, actor=request.user, comment=comment)
        elif action == "comment":
            reviews.asset_comment_add(asset=asset, actor=request.user, body=comment)
        elif action == "submit":
            reviews.review_submit(asset=asset, actor=request.user, comment=comment)
        else:
            raise ValidationError({"action": "Choose approve, request changes, reject or comment."})
    except (PermissionDenied, ValidationError, reviews.ReviewConflict) as exc:
        asset.refresh_from_db()
        context = _panel_context(request, asset, error=error_text(exc), comment=comment, override_reason=request.POST.get("override_reason", ""))
        return render(request, "studio/review/_panel.html", context)
    asset.refresh_from_db()
    response = render(request, "studio/review/_panel.html", _panel_context(request, asset, done=action))
    if action != "comment":
        response["HX-Trigger"] = f'{{"review-decided": {{"id": {asset.pk}, "state": "{asset.review_state}"}}}}'
    return response


@role_page(*DECIDERS)
@require_POST
def review_bulk(request):
    """A decision on the selected images; approval takes only those whose gates all pass."""
    action = request.POST.get("action", "")
    ids = request.POST.getlist("ids")
    back = redirect(f"{request.path.rsplit('bulk/', 1)[0]}?{request.POST.get('query', '')}")
    try:
        assets = studio_selectors.assets_get(workspace=request.workspace, asset_ids=ids) if ids else []
        if not assets:
            raise ValidationError({"ids": "Select one or more images first (x selects the current one)."})
        result = reviews.reviews_decide(assets=assets, actor=request.user, decision=action, comment=request.POST.get("comment", ""))
    except (ValidationError, PermissionDenied) as exc:
        request.session["review_flash"] = {"error": error_text(exc)}
        return back
    request.session["review_flash"] = {
        "done": len(result.done),
        "action": action,
        "skipped": [{"id": a.pk, "reason": why} for a, why in result.skipped],
    }
    return back


@workspace_page
@require_POST
def job_submit(request, job_id: int):
    """Submit every image of a finished job (or the chosen ones) for review."""
    job = studio_selectors.generation_job_get(workspace=request.workspace, job_id=job_id)
    assets = list(studio_selectors.asset_list(workspace=request.workspace, job_id=job.pk))
    chosen = {int(i) for i in request.POST.getlist("ids") if i.isdigit()}
    if chosen:
        assets = [a for a in assets if a.pk in chosen]
    result = reviews.reviews_submit(assets=assets, actor=request.user)
    request.session["job_flash"] = {"submitted": len(result.done), "skipped": [why for _, why in result.skipped]}
    return redirect("job-detail", job_id=job.pk)


@workspace_page
def notifications(request):
    rows = list(studio_selectors.notification_list(user=request.user, workspace=request.workspace)[:100])
    return render(request, "studio/review/notifications.html", {"notifications": rows, "nav": "notifications"})


@workspace_page
@require_POST
def notifications_read(request):
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()] or None
    reviews.notifications_mark_read(user=request.user, workspace=request.workspace, ids=ids)
    return redirect("notifications")

