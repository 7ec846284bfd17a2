"""Server-rendered pages. They read through selectors and write through the API or services;
no logic of their own."""
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseForbidden
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from brand import selectors as brand_selectors
from catalog import selectors
from catalog.api.views import stored_file_response
from catalog.jobs import JobStatus
from catalog.models import JobKind
from brand.services import workspace_defaults_ensure
from studio import selectors as studio_selectors
from studio import services as studio_services

from .forms import ComposeForm


def workspace_page(view):
    """Signed in, and acting in one of the caller's workspaces (request.workspace)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        membership = selectors.membership_for(user=request.user, workspace_slug=request.session.get("workspace"))
        if membership is None:
            return HttpResponseForbidden("Your account does not belong to a workspace yet. Ask an owner to invite you.")
        request.membership, request.workspace = membership, membership.workspace
        return view(request, *args, **kwargs)

    return wrapper


def _grid_context(request):
    product = request.GET.get("product") or None
    status = request.GET.get("status") if request.GET.get("status") in selectors.PHOTO_STATUSES else None
    photos = list(selectors.photo_list(workspace=request.workspace, product_id=product, status=status)[:200])
    return {
        "photos": photos,
        "processing": any(photo.status == "processing" for photo in photos),
        "grid_query": request.GET.urlencode(),
        "status": status,
        "status_links": [(value, label, _with_param(request, "status", value)) for value, label in (
            (None, "All"), ("processing", "Processing"), ("failed", "Needs attention"), ("ready", "Ready"))],
    }


def _with_param(request, name: str, value: str | None) -> str:
    params = request.GET.copy()
    params.pop(name, None)
    if value:
        params[name] = value
    return f"?{params.urlencode()}" if params else "?"


@workspace_page
def products(request):
    context = _grid_context(request)
    context["products"] = selectors.product_list_with_cover(workspace=request.workspace, search=request.GET.get("q"))
    context["max_upload_mb"] = settings.VITRINE_UPLOAD_MAX_BYTES // (1024 * 1024)
    context["nav"] = "products"
    return render(request, "studio/products.html", context)


@workspace_page
def photo_grid(request):
    return render(request, "studio/_photo_grid.html", _grid_context(request))


def _touch_up_context(photo, current_cutout) -> dict:
    """The photo's newest touch-up job, for the progress line under the brush; a failure is
    shown until a newer revision replaces the cutout it was meant to change."""
    job = next((job for job in photo.jobs.all() if job.kind == JobKind.TOUCH_UP), None)
    failed = job is not None and job.status == JobStatus.FAILED and (current_cutout is None or current_cutout.created_at < job.created_at)
    return {"touch_up_job": job, "touch_up_pending": job is not None and job.is_active, "touch_up_failed": failed}


def _photo_context(request, photo_id: int) -> dict:
    photo = selectors.photo_get(workspace=request.workspace, photo_id=photo_id)
    revisions = list(studio_selectors.cutout_list(workspace=request.workspace, photo_id=photo.pk)[:50])
    jobs = list(studio_selectors.generation_job_list(workspace=request.workspace, photo_id=photo.pk)[:10])
    cutout_job = next((job for job in photo.jobs.all() if job.kind == JobKind.CUTOUT), None)
    cutout = revisions[0] if revisions else None
    return {
        "photo": photo,
        "cutout": cutout,
        "revisions": revisions,
        "cutout_job": cutout_job,
        "cutout_pending": cutout_job is not None and cutout_job.is_active,
        **_touch_up_context(photo, cutout),
        "generation_jobs": jobs,
        "nav": "products",
    }


@workspace_page
def photo_detail(request, photo_id: int):
    return render(request, "studio/photo.html", _photo_context(request, photo_id))


@workspace_page
def photo_cutout_panel(request, photo_id: int):
    return render(request, "studio/_cutout_panel.html", _photo_context(request, photo_id))


@workspace_page
def photo_touch_up_status(request, photo_id: int):
    """The progress line of the photo's newest touch-up, polled while it runs. When it has
    succeeded, the response asks the page (HX-Trigger) to reload the cutout panel, so the
    heavy panel (photo, mask) is fetched once rather than on every poll."""
    photo = selectors.photo_get(workspace=request.workspace, photo_id=photo_id)
    context = {"photo": photo, **_touch_up_context(photo, studio_selectors.cutout_current(photo=photo))}
    response = render(request, "studio/_touch_up_status.html", context)
    job = context["touch_up_job"]
    if job is not None and job.status == JobStatus.SUCCEEDED:
        response["HX-Trigger"] = "cutout-changed"
    return response


@workspace_page
def photo_jobs(request, photo_id: int):
    photo = selectors.photo_get(workspace=request.workspace, photo_id=photo_id)
    return render(request, "studio/_photo_jobs.html", {"photo": photo})


@workspace_page
def preset_thumbnail(request, preset_id: int):
    preset = brand_selectors.preset_get(workspace=request.workspace, preset_id=preset_id)
    if not preset.thumbnail:
        raise Http404("This preset has no thumbnail.")
    return stored_file_response(preset.thumbnail, f"preset-{preset.slug}.webp")


@workspace_page
def compose(request, photo_id: int):
    """Choose a preset, brand kit, prompt, variants, channels and seed; start a job."""
    photo = selectors.photo_get(workspace=request.workspace, photo_id=photo_id)
    if request.method == "POST" and "set_up_defaults" in request.POST:
        workspace_defaults_ensure(workspace=request.workspace)
        return redirect("compose", photo_id=photo.pk)
    presets = list(brand_selectors.preset_list(workspace=request.workspace))
    kits = list(brand_selectors.brand_kit_list(workspace=request.workspace))
    if not presets or not kits:
        # A workspace made outside the usual paths has no brand kit or presets yet; setting
        # them up is a write, so it waits for the person to ask (a GET never writes).
        return render(request, "studio/compose_setup.html", {"photo": photo, "nav": "products"})
    default_kit = next((k for k in kits if k.is_default), kits[0])
    default_preset = next((p for p in presets if p.is_default), presets[0])
    form = ComposeForm(
        request.POST or None,
        initial={"preset": default_preset.pk, "brand_kit": default_kit.pk, "variants": 4, "channels": default_kit.default_channels or ["square-2048"]},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = studio_services.generation_job_create(
                photo=photo,
                user=request.user,
                variants=data["variants"],
                seed=data["seed"],
                preset=brand_selectors.preset_get(workspace=request.workspace, preset_id=data["preset"]),
                brand_kit=brand_selectors.brand_kit_get(workspace=request.workspace, kit_id=data["brand_kit"]),
                prompt=data["prompt"],
                channels=data["channels"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return redirect("job-detail", job_id=job.pk)
    return render(
        request, "studio/compose.html",
        {"photo": photo, "form": form, "presets": presets, "kits": kits, "selected_preset": str(form["preset"].value()), "nav": "products"},
    )


def _before_style(asset) -> str:
    """CSS that puts the original photo where the asset's transform put the product, so the
    before/after slider compares the same pixels, not two framings."""
    t = asset.recipe["transform"]
    w, h = asset.width, asset.height
    return (
        f"left:{t['dx'] / w * 100:.4f}%;top:{t['dy'] / h * 100:.4f}%;"
        f"width:{asset.photo.width * t['scale'] / w * 100:.4f}%;height:{asset.photo.height * t['scale'] / h * 100:.4f}%"
    )


def _job_context(request, job_id: int) -> dict:
    job = studio_selectors.generation_job_get(workspace=request.workspace, job_id=job_id)
    assets = list(studio_selectors.asset_list(workspace=request.workspace, job_id=job.pk)) if not job.is_active else []
    for asset in assets:
        asset.before_style = _before_style(asset)
    return {"job": job, "assets": assets, "nav": "products"}


@workspace_page
def job_detail(request, job_id: int):
    return render(request, "studio/job.html", _job_context(request, job_id))


@workspace_page
def job_panel(request, job_id: int):
    return render(request, "studio/_job_panel.html", _job_context(request, job_id))


@workspace_page
@require_POST
def job_cancel(request, job_id: int):
    job = studio_selectors.generation_job_get(workspace=request.workspace, job_id=job_id)
    studio_services.generation_job_cancel(job=job)
    return render(request, "studio/_job_panel.html", _job_context(request, job_id))
