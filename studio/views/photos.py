"""The photo pages: the photo and its cutout, touch-up status, compose, and a job's scenes.
Pages read through selectors and write through services; no logic of their own."""

from django.http import Http404
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
from studio import reviews
from studio import services as studio_services

from ..forms import ComposeForm
from .base import asset_before_style, workspace_page


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
    # `products`: the choices of the product select (studio/views/catalog.py moves the photo).
    context = {**_photo_context(request, photo_id), "products": selectors.product_list(workspace=request.workspace)}
    return render(request, "studio/photo.html", context)


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


def _job_context(request, job_id: int) -> dict:
    job = studio_selectors.generation_job_get(workspace=request.workspace, job_id=job_id)
    assets = list(studio_selectors.asset_list(workspace=request.workspace, job_id=job.pk)) if not job.is_active else []
    for asset in assets:
        asset.before_style = asset_before_style(asset)
    submittable = sum(asset.review_state in reviews.SUBMITTABLE for asset in assets)
    return {"job": job, "assets": assets, "submittable": submittable, "job_flash": request.session.pop("job_flash", None), "nav": "products"}


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
