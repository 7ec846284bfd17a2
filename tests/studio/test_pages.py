"""Server-rendered pages: sign-in, scoping, and what the products page shows."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from studio.services import photo_add
from tests.factories import ProductFactory
from tests.images import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize("url", ["/products/", "/products/photos/", "/photos/1/"])
def test_pages_require_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_products_page_shows_each_product_with_its_cover(signed_in, workspace, django_capture_on_commit_callbacks):
    product = ProductFactory(workspace=workspace, title="Amber bottle", sku="AB-1")
    with django_capture_on_commit_callbacks(execute=True):
        photo = photo_add(workspace=workspace, file=SimpleUploadedFile("a.jpg", image_bytes("JPEG")), product=product).photo
    ProductFactory(workspace=workspace, title="Bare mug")

    html = signed_in.get("/products/").content.decode()

    assert f'src="/api/v1/photos/{photo.pk}/file/thumbnail/"' in html
    assert "AB-1 · 1 photo" in html
    assert "No SKU · 0 photos" in html


def test_products_page_search_narrows_the_catalog(signed_in, workspace):
    ProductFactory(workspace=workspace, title="Amber bottle")
    ProductFactory(workspace=workspace, title="Ceramic mug")

    html = signed_in.get("/products/?q=mug").content.decode()

    assert "Ceramic mug" in html
    assert "Amber bottle" not in html


def test_photo_grid_filters_by_product(signed_in, workspace):
    product = ProductFactory(workspace=workspace)
    photo_add(workspace=workspace, file=SimpleUploadedFile("in.jpg", image_bytes("JPEG", seed=1)), product=product)
    photo_add(workspace=workspace, file=SimpleUploadedFile("out.jpg", image_bytes("JPEG", seed=2)))

    html = signed_in.get(f"/products/photos/?product={product.pk}").content.decode()

    assert "in.jpg" in html
    assert "out.jpg" not in html
    assert 'hx-trigger="refresh, every 2s"' in html  # its job is still queued: the grid polls


def test_another_workspaces_photo_page_is_not_found(signed_in, other_membership):
    foreign = photo_add(workspace=other_membership.workspace, file=SimpleUploadedFile("x.jpg", image_bytes("JPEG"))).photo

    assert signed_in.get(f"/photos/{foreign.pk}/").status_code == 404
    assert signed_in.get(f"/api/v1/photos/{foreign.pk}/file/original/").status_code == 404


def test_account_without_workspace_is_told_what_to_do(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(email="lonely@example.test", password="x"))

    response = client.get("/products/")

    assert response.status_code == 403
    assert b"Ask an owner to invite you." in response.content


def test_compose_page_of_a_new_workspace_writes_nothing_until_asked(signed_in, workspace, django_capture_on_commit_callbacks):
    from brand.models import BrandKit, ScenePreset

    with django_capture_on_commit_callbacks(execute=True):
        photo = photo_add(workspace=workspace, file=SimpleUploadedFile("c.jpg", image_bytes("JPEG", seed=3))).photo

    html = signed_in.get(f"/photos/{photo.pk}/compose/").content.decode()

    assert "This workspace has no brand kit or scene presets yet" in html
    assert (BrandKit.objects.filter(workspace=workspace).count(), ScenePreset.objects.filter(workspace=workspace).count()) == (0, 0)

    response = signed_in.post(f"/photos/{photo.pk}/compose/", {"set_up_defaults": "1"})

    assert response.status_code == 302
    assert (BrandKit.objects.filter(workspace=workspace).count(), ScenePreset.objects.filter(workspace=workspace).count()) == (1, 7)
    assert 'name="preset"' in signed_in.get(f"/photos/{photo.pk}/compose/").content.decode()
