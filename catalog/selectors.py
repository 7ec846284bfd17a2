"""Every read, scoped to the caller's workspace. A row of another workspace is not found."""
from __future__ import annotations

from django.db.models import Case, Count, Exists, F, FilteredRelation, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, When
from django.http import Http404

from .models import (
    ACTIVE_JOB_STATUSES,
    ApiToken,
    Invitation,
    JobKind,
    JobStatus,
    Membership,
    PhotoJob,
    Product,
    ProductPhoto,
    Role,
    User,
    Workspace,
    secret_hash,
)


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
    same as ProductPhoto.status: processing (a job runs; a large photo still checking counts
    here), failed (the newest job of a kind failed, or the photo could not be decoded), ready."""
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
        # No working copy and nothing running: the decode failed (the decode job's reason says why).
        failed = Q(newest_thumbnail=JobStatus.FAILED) | Q(newest_cutout=JobStatus.FAILED) | Q(working="")
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


# Team: members, invitations, API tokens ----------------------------------------------------


def member_list(*, workspace: Workspace) -> QuerySet[Membership]:
    """The workspace's members with their accounts, owners first, then by who joined first."""
    role_order = Case(*(When(role=role, then=rank) for rank, role in enumerate(Role.values)), output_field=IntegerField())
    return (
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .annotate(role_rank=role_order)
        .order_by("role_rank", "created_at", "pk")
    )


def member_get(*, workspace: Workspace, membership_id) -> Membership:
    return get_or_404(Membership.objects.filter(workspace=workspace).select_related("user", "workspace"), membership_id)


def invitation_list(*, workspace: Workspace) -> QuerySet[Invitation]:
    """Invitations not yet accepted or revoked (expired ones too: their status says so), newest first."""
    return Invitation.objects.filter(workspace=workspace, accepted_at__isnull=True, revoked_at__isnull=True).select_related(
        "invited_by"
    )


def invitation_get(*, workspace: Workspace, invitation_id) -> Invitation:
    return get_or_404(Invitation.objects.filter(workspace=workspace).select_related("invited_by", "workspace"), invitation_id)


def invitation_for_token(*, token: str) -> Invitation | None:
    """The invitation a link's token opens, whatever its state (the token is the credential,
    so this read is not scoped to a workspace)."""
    return Invitation.objects.select_related("workspace", "invited_by").filter(token_hash=secret_hash(token or "")).first()


def account_exists(*, email: str) -> bool:
    return User.objects.filter(email__iexact=email).exists()


def api_token_list(*, workspace: Workspace, user: User | None = None) -> QuerySet[ApiToken]:
    """The workspace's API tokens, newest first; only `user`'s when given."""
    tokens = ApiToken.objects.filter(workspace=workspace).select_related("user")
    if user is not None:
        tokens = tokens.filter(user=user)
    return tokens


def api_token_get(*, workspace: Workspace, token_id, user: User | None = None) -> ApiToken:
    return get_or_404(api_token_list(workspace=workspace, user=user), token_id)


def api_token_for_key(*, key: str) -> ApiToken | None:
    """The token a presented API key is, by its hash, with its user, workspace and
    `member` (the user's membership there, None once removed), in one query: it runs on
    every API request."""
    member = FilteredRelation("user__memberships", condition=Q(user__memberships__workspace=F("workspace")))
    tokens = ApiToken.objects.annotate(member=member).select_related("user", "workspace", "member")
    return tokens.filter(key_hash=secret_hash(key)).first()
