"""Every read, scoped to the caller's workspace. A row of another workspace is not found."""
from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.http import Http404

from .models import ACTIVE_JOB_STATUSES, PhotoJob, JobKind, JobStatus, Membership, Product, ProductPhoto, User, Workspace


def membership_for(*, user: User, workspace_slug: str | None = None) -> Membership | None:
    """The caller's membership: the named workspace, else their first one."""
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("workspace").filter(user=user).order_by("created_at", "pk")
    if workspace_slug:
        memberships = memberships.filter(workspace__slug=workspace_slug)
    return memberships.first()


def get_or_404(queryset: QuerySet, pk):
    """One row of an already workspace-scoped queryset, or 404 (also for a malformed id)."""
    try:
        return queryset.get(pk=int(pk))
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404(f"No {queryset.model._meta.verbose_name} with id {pk}") from None


def filter_jobs(jobs: QuerySet, *, photo_id=None, status: str | None = None) -> QuerySet:
    """Narrow any job-row queryset (photo jobs, generation jobs) by photo and status."""
    if photo_id is not None:
        jobs = jobs.filter(photo_id=photo_id)
    if status:
        jobs = jobs.filter(status=status)
    return jobs


def product_list(*, workspace: Workspace, search: str | None = None) -> QuerySet[Product]:
    products = Product.objects.filter(workspace=workspace)
    if search:
        products = products.filter(Q(title__icontains=search) | Q(sku__icontains=search) | Q(handle__icontains=search))
    return products


def product_list_with_cover(*, workspace: Workspace, search: str | None = None) -> QuerySet[Product]:
    """Products with `photo_count` and `cover_photo_id` (the newest photo with a thumbnail)."""
    cover = ProductPhoto.objects.filter(product=OuterRef("pk")).exclude(thumbnail="").order_by("-created_at", "-pk")
    return product_list(workspace=workspace, search=search).annotate(
        photo_count=Count("photos"), cover_photo_id=Subquery(cover.values("pk")[:1])
    )


def product_get(*, workspace: Workspace, product_id) -> Product:
    return get_or_404(Product.objects.filter(workspace=workspace), product_id)


def _with_jobs(photos: QuerySet[ProductPhoto]) -> QuerySet[ProductPhoto]:
    # One query for every photo's jobs, newest first, however long the page.
    return photos.select_related("product").prefetch_related(
        Prefetch("jobs", queryset=PhotoJob.objects.order_by("-created_at", "-pk"))
    )


PHOTO_STATUSES = ("processing", "failed", "ready")


def _newest_job_status(kind: str) -> Subquery:
    newest = PhotoJob.objects.filter(photo=OuterRef("pk"), kind=kind).order_by("-created_at", "-pk")
    return Subquery(newest.values("status")[:1])


def photo_list(
    *, workspace: Workspace, product_id=None, unassigned: bool = False, status: str | None = None
) -> QuerySet[ProductPhoto]:
    """The workspace's photos, newest first, with product and jobs loaded. `status` is the
    same as ProductPhoto.status: processing (a job runs), failed (the newest job of a kind
    failed), ready."""
    photos = ProductPhoto.objects.filter(workspace=workspace)
    if product_id is not None:
        photos = photos.filter(product_id=product_id)
    if unassigned:
        photos = photos.filter(product__isnull=True)
    if status is not None:
        running = Exists(PhotoJob.objects.filter(photo=OuterRef("pk"), status__in=ACTIVE_JOB_STATUSES))
        photos = photos.annotate(
            running=running,
            newest_thumbnail=_newest_job_status(JobKind.THUMBNAIL),
            newest_cutout=_newest_job_status(JobKind.CUTOUT),
        )
        failed = Q(newest_thumbnail=JobStatus.FAILED) | Q(newest_cutout=JobStatus.FAILED)
        if status == "processing":
            photos = photos.filter(running=True)
        elif status == "failed":
            photos = photos.filter(failed, running=False)
        elif status == "ready":
            photos = photos.filter(running=False).exclude(failed)
        else:
            raise ValueError(f"status must be one of {', '.join(PHOTO_STATUSES)}")
    return _with_jobs(photos)


def photo_get(*, workspace: Workspace, photo_id) -> ProductPhoto:
    return get_or_404(_with_jobs(ProductPhoto.objects.filter(workspace=workspace)), photo_id)


def job_list(*, workspace: Workspace, photo_id=None, status: str | None = None) -> QuerySet[PhotoJob]:
    return filter_jobs(PhotoJob.objects.filter(workspace=workspace), photo_id=photo_id, status=status)


def job_get(*, workspace: Workspace, job_id) -> PhotoJob:
    return get_or_404(PhotoJob.objects.filter(workspace=workspace), job_id)
