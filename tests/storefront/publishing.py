"""What the publishing tests share: a connected fake shop whose products are linked to catalog
products, and approved images of real photos without running the scene model (the publisher
does not care how the pixels were made; each image is a real, distinct PNG)."""
from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from catalog.models import ProductPhoto, Role
from storefront.models import StorefrontConnection, StorefrontProduct
from storefront.services import connection_create, storefront_product_apply
from studio import reviews
from studio.models import Asset, GenerationJob
from tests.factories import MembershipFactory
from tests.images import image_bytes

PRESET_NAME = "Marble kitchen"


def connect(shop, workspace) -> StorefrontConnection:
    return connection_create(workspace=workspace, shop_domain=shop.shop, access_token=shop.token, api_base_url=shop.admin_url)


def link_products(shop, connection) -> list[StorefrontProduct]:
    """Every product of the fake shop as a linked catalog product (what an import leaves)."""
    with shop.lock:
        payloads = [shop.rest_product(pid) for pid in sorted(shop.products)]
    return [storefront_product_apply(connection=connection, payload=payload) for payload in payloads]


def decider(workspace):
    return MembershipFactory(workspace=workspace, role=Role.BRAND_MANAGER).user


def make_assets(*, photo: ProductPhoto, submitter, count: int, seed: int = 0, fmt: str = "PNG") -> list[Asset]:
    """`count` images of finished jobs of `photo` (at most 8 per job), not submitted yet."""
    made = []
    cutout = photo.cutouts.order_by("-revision").first()
    for start in range(0, count, 8):
        n = min(8, count - start)
        job = GenerationJob.objects.create(
            workspace=photo.workspace, photo=photo, cutout=cutout, status="succeeded", progress=100, created_by=submitter,
            plan={"preset": {"name": PRESET_NAME}}, seed=seed, channels=["as-photo"], variants=n,
        )
        for variant in range(n):
            k = seed * 1000 + start + variant
            data = image_bytes(fmt, size=(64, 48), color=(k % 251, (k * 7) % 251, (k * 13) % 251), seed=k)
            name = default_storage.save(f"assets/{photo.workspace_id}/{job.pk}/{variant}.{fmt.lower()}", ContentFile(data))
            made.append(Asset.objects.create(
                workspace=photo.workspace, job=job, photo=photo, cutout=cutout, variant=variant, seed=k, channel="as-photo", file=name,
                sha256=hashlib.sha256(data).hexdigest(), width=64, height=48, lock_certificate={}, preflight=[], preflight_passed=True,
                recipe={}, gates=[], gates_passed=True,
            ))
    return made


def approve(assets: list[Asset], *, submitter, approver) -> list[Asset]:
    """Submit and approve through the review services (the approval pins each file's sha256)."""
    assert not reviews.reviews_submit(assets=assets, actor=submitter).skipped
    assert not reviews.reviews_decide(assets=assets, actor=approver, decision="approved").skipped
    return list(Asset.objects.filter(pk__in=[a.pk for a in assets]).order_by("pk"))


def shop_images(shop) -> list[dict]:
    """Every image the fake shop holds (all statuses), from its state dump."""
    return [image for product in shop.state()["products"] for image in product["images"]]
