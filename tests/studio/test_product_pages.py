"""Products in the browser, without a browser: create, edit, delete; move photos between
products (many from the grid, one from its page); delete a photo with an honest confirmation."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from brand.models import ScenePreset
from brand.services import workspace_defaults_ensure
from catalog.models import Product, ProductPhoto, Role
from studio.models import Asset, Cutout, ReviewState
from studio.services import photo_add
from tests.conftest import stored_files
from tests.factories import MembershipFactory, ProductFactory
from tests.images import product_on_white, image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def make_photo(workspace, seed=0, product=None, name=None):
    data = image_bytes("JPEG", size=(40, 30), seed=seed)
    return photo_add(workspace=workspace, file=SimpleUploadedFile(name or f"p{seed}.jpg", data), product=product).photo


def products_of(*photos):
    return [ProductPhoto.objects.get(pk=photo.pk).product_id for photo in photos]


# Creating, editing, deleting a product --------------------------------------------------------


def test_products_page_links_to_new_product_and_each_product_page(signed_in, workspace):
    product = ProductFactory(workspace=workspace, title="Amber bottle")

    html = signed_in.get("/products/").content.decode()

    assert '<a class="button primary" href="/products/new/">New product</a>' in html
    assert f'href="/products/{product.pk}/" data-product-id="{product.pk}"' in html


def test_the_merchant_creates_a_product_and_the_handle_comes_from_the_title(signed_in, workspace, membership):
    assert membership.role == Role.MERCHANT  # the API lets every member manage products; so do the pages

    response = signed_in.post("/products/new/", {"title": "Amber Glass Bottle", "handle": "", "sku": "AGB-1"})

    product = Product.objects.get()
    assert (product.workspace, product.title, product.handle, product.sku) == (workspace, "Amber Glass Bottle", "amber-glass-bottle", "AGB-1")
    assert response.status_code == 302
    assert response["Location"] == f"/products/{product.pk}/"
    page = signed_in.get(response["Location"]).content.decode()
    assert "<h1>Amber Glass Bottle</h1>" in page
    assert "Created Amber Glass Bottle." in page


def test_a_duplicate_handle_is_explained_next_to_the_handle_field(signed_in, workspace):
    ProductFactory(workspace=workspace, title="Mug", handle="mug")

    response = signed_in.post("/products/new/", {"title": "Mug", "handle": "", "sku": ""})

    assert response.status_code == 400
    html = response.content.decode()
    assert (
        '<p class="error" id="id_handle_errors">Another product in this workspace already uses the handle &#x27;mug&#x27;.</p>'
        in html
    )
    assert 'name="handle" id="id_handle" value="" maxlength="255" aria-invalid="true"' in html
    assert 'name="title" id="id_title" value="Mug"' in html  # what they typed is kept
    assert Product.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"title": "", "handle": "", "sku": ""}, "title", "This field is required."),
        ({"title": "!!!", "handle": "", "sku": ""}, "title", "Give the product a title with at least one letter or digit."),
        ({"title": "Mug", "handle": "mug cup", "sku": ""}, "handle", "Use only letters, digits, hyphens and underscores in the handle."),
        ({"title": "Mug", "handle": "", "sku": "X" * 101}, "sku", "Ensure this value has at most 100 characters (it has 101)."),
    ],
)
def test_bad_product_fields_get_a_message_next_to_the_field(signed_in, payload, field, message):
    response = signed_in.post("/products/new/", payload)

    assert response.status_code == 400
    assert f'<p class="error" id="id_{field}_errors">{message}</p>' in response.content.decode()
    assert Product.objects.count() == 0


def test_the_product_page_shows_its_photos_and_saves_its_fields(signed_in, workspace):
    product = ProductFactory(workspace=workspace, title="Mug", handle="mug", sku="M-1")
    mine = make_photo(workspace, seed=1, product=product, name="mine.jpg")
    make_photo(workspace, seed=2, name="loose.jpg")

    html = signed_in.get(f"/products/{product.pk}/").content.decode()
    assert 'aria-label="Select mine.jpg"' in html
    assert "loose.jpg" not in html
    assert f'hx-get="/products/photos/?product={product.pk}"' in html  # its refresh keeps to this product
    assert f'<input type="hidden" id="upload-product" value="{product.pk}">' in html  # uploads here attach to it

    response = signed_in.post(f"/products/{product.pk}/", {"title": "Ceramic mug", "handle": "", "sku": "CM-2"})

    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.title, product.handle, product.sku) == ("Ceramic mug", "ceramic-mug", "CM-2")
    assert products_of(mine) == [product.pk]


def test_the_api_derives_an_emptied_handle_from_the_title_as_the_page_does(api, workspace):
    product = ProductFactory(workspace=workspace, title="Mug", handle="mug")

    response = api.patch(f"/api/v1/products/{product.pk}/", {"title": "Tall mug", "handle": ""}, format="json")

    assert (response.status_code, response.json()["handle"]) == (200, "tall-mug")


def test_editing_to_a_taken_handle_keeps_the_product_as_it_was(signed_in, workspace):
    ProductFactory(workspace=workspace, title="Bottle", handle="bottle")
    product = ProductFactory(workspace=workspace, title="Mug", handle="mug")

    response = signed_in.post(f"/products/{product.pk}/", {"title": "Mug", "handle": "bottle", "sku": ""})

    assert response.status_code == 400
    html = response.content.decode()
    assert "Another product in this workspace already uses the handle &#x27;bottle&#x27;." in html
    assert "<p class=\"muted\">No SKU · mug</p>" in html  # the header shows what is saved
    product.refresh_from_db()
    assert product.handle == "mug"


def test_deleting_a_product_says_what_happens_to_its_photos_and_keeps_them(signed_in, workspace, django_capture_on_commit_callbacks):
    product = ProductFactory(workspace=workspace, title="Mug")
    with django_capture_on_commit_callbacks(execute=True):
        # Photos with a product in them: a cutout of a 40 x 30 noise photo now fails (too small).
        photos = [
            photo_add(workspace=workspace, file=SimpleUploadedFile(f"p{seed}.png", product_on_white(size=(96, 72), seed=seed)), product=product).photo
            for seed in (1, 2)
        ]
    cutouts = Cutout.objects.filter(photo__in=photos).count()
    assert cutouts == 2

    confirmation = signed_in.get(f"/products/{product.pk}/delete/").content.decode()
    assert (
        "Its 2 photos stay in your photo library, attached to no product, with their cutouts and generated images."
        in confirmation
    )
    assert Product.objects.filter(pk=product.pk).exists()  # asking is not deleting

    response = signed_in.post(f"/products/{product.pk}/delete/")

    assert response.status_code == 302
    assert response["Location"] == "/products/?product=none"
    assert not Product.objects.filter(pk=product.pk).exists()
    assert products_of(*photos) == [None, None]
    assert Cutout.objects.filter(photo__in=photos).count() == cutouts
    page = signed_in.get(response["Location"]).content.decode()
    assert "Deleted Mug. Its 2 photos stayed in the library, attached to no product." in page
    assert page.count('class="tile photo-tile"') == 2


def test_a_product_without_photos_says_so_before_it_is_deleted(signed_in, workspace):
    product = ProductFactory(workspace=workspace, title="Mug")

    html = signed_in.get(f"/products/{product.pk}/delete/").content.decode()

    assert "<li>It has no photos.</li>" in html
    assert signed_in.post(f"/products/{product.pk}/delete/")["Location"] == "/products/"


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/products/{pk}/"), ("post", "/products/{pk}/"), ("get", "/products/{pk}/delete/"), ("post", "/products/{pk}/delete/")],
)
def test_another_workspaces_product_is_not_found(signed_in, other_membership, method, path):
    foreign = ProductFactory(workspace=other_membership.workspace, title="Theirs", handle="theirs")

    response = getattr(signed_in, method)(path.format(pk=foreign.pk), {"title": "Mine now", "handle": "", "sku": ""})

    assert response.status_code == 404
    foreign.refresh_from_db()
    assert (foreign.title, foreign.handle) == ("Theirs", "theirs")


@pytest.mark.parametrize("url", ["/products/new/", "/products/1/", "/products/1/delete/", "/photos/1/delete/"])
def test_product_pages_require_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


# Moving photos ----------------------------------------------------------------------------------


def test_ticked_photos_move_to_a_product_from_the_grid(signed_in, workspace):
    product = ProductFactory(workspace=workspace, title="Mug")
    elsewhere = ProductFactory(workspace=workspace, title="Bottle")
    first, second = make_photo(workspace, seed=1), make_photo(workspace, seed=2, product=elsewhere)
    untouched = make_photo(workspace, seed=3)

    html = signed_in.get("/products/").content.decode()
    assert f'<input type="checkbox" class="tile-pick" id="pick-{first.pk}" name="photos" value="{first.pk}" form="move-photos"' in html
    assert f'<option value="{product.pk}">Mug</option>' in html

    response = signed_in.post("/products/photos/move/", {"photos": [first.pk, second.pk], "product": product.pk, "next": "/products/?status=ready"})

    assert response.status_code == 302
    assert response["Location"] == "/products/?status=ready"
    assert products_of(first, second, untouched) == [product.pk, product.pk, None]
    assert "Moved 2 photos to Mug." in signed_in.get(response["Location"]).content.decode()


def test_no_product_detaches_the_ticked_photos(signed_in, workspace):
    product = ProductFactory(workspace=workspace)
    photos = [make_photo(workspace, seed=seed, product=product) for seed in (1, 2)]

    response = signed_in.post("/products/photos/move/", {"photos": [p.pk for p in photos], "product": "none", "next": f"/products/{product.pk}/"})

    assert response["Location"] == f"/products/{product.pk}/"
    assert products_of(*photos) == [None, None]
    assert "Detached 2 photos: they are in the library, attached to no product." in signed_in.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"product": "{product}"}, "Select at least one photo to move."),
        ({"photos": ["{photo}"]}, "Choose a product, or “No product”."),
        ({"photos": ["{photo}", "seven"], "product": "{product}"}, "Select photos from the grid."),
    ],
)
def test_an_incomplete_move_is_explained_and_moves_nothing(signed_in, workspace, payload, message):
    product = ProductFactory(workspace=workspace)
    photo = make_photo(workspace)
    ids = {"product": product.pk, "photo": photo.pk}
    data = {key: [v.format(**ids) for v in value] if isinstance(value, list) else value.format(**ids) for key, value in payload.items()}

    response = signed_in.post("/products/photos/move/", data, follow=True)

    assert response.redirect_chain == [("/products/", 302)]
    assert f'<p class="notice notice-error" role="alert">{message}</p>' in response.content.decode()
    assert products_of(photo) == [None]


def test_a_foreign_photo_among_the_ticked_ones_moves_none_of_them(signed_in, workspace, other_membership):
    product = ProductFactory(workspace=workspace)
    mine = make_photo(workspace, seed=1)
    theirs = make_photo(other_membership.workspace, seed=2)

    response = signed_in.post("/products/photos/move/", {"photos": [mine.pk, theirs.pk], "product": product.pk})

    assert response.status_code == 404
    assert products_of(mine, theirs) == [None, None]


def test_moving_to_another_workspaces_product_is_not_found(signed_in, workspace, other_membership):
    foreign = ProductFactory(workspace=other_membership.workspace)
    mine = make_photo(workspace)

    assert signed_in.post("/products/photos/move/", {"photos": [mine.pk], "product": foreign.pk}).status_code == 404
    assert signed_in.post(f"/photos/{mine.pk}/product/", {"product": foreign.pk}).status_code == 404
    assert products_of(mine) == [None]


def test_a_move_only_goes_back_to_a_page_of_this_site(signed_in, workspace):
    product = ProductFactory(workspace=workspace)
    photo = make_photo(workspace)

    response = signed_in.post("/products/photos/move/", {"photos": [photo.pk], "product": product.pk, "next": "https://evil.example/"})

    assert response["Location"] == "/products/"


def test_the_photo_page_moves_its_one_photo(signed_in, workspace):
    product = ProductFactory(workspace=workspace, title="Mug")
    photo = make_photo(workspace)

    html = signed_in.get(f"/photos/{photo.pk}/").content.decode()
    assert '<option value="none" selected>No product</option>' in html
    assert f'<option value="{product.pk}">Mug</option>' in html

    response = signed_in.post(f"/photos/{photo.pk}/product/", {"product": product.pk})

    assert response["Location"] == f"/photos/{photo.pk}/"
    assert products_of(photo) == [product.pk]
    html = signed_in.get(f"/photos/{photo.pk}/").content.decode()
    assert "Moved to Mug." in html
    assert f'Attached to <a href="/products/{product.pk}/">Mug</a>.' in html
    assert f'<option value="{product.pk}" selected>Mug</option>' in html

    signed_in.post(f"/photos/{photo.pk}/product/", {"product": "none"})
    assert products_of(photo) == [None]


def test_another_workspaces_photo_cannot_be_moved_from_its_page(signed_in, workspace, other_membership):
    product = ProductFactory(workspace=workspace)
    theirs = make_photo(other_membership.workspace)

    assert signed_in.post(f"/photos/{theirs.pk}/product/", {"product": product.pk}).status_code == 404
    assert products_of(theirs) == [None]


def test_moving_needs_a_post(signed_in, workspace):
    photo = make_photo(workspace)

    assert signed_in.get("/products/photos/move/").status_code == 405
    assert signed_in.get(f"/photos/{photo.pk}/product/").status_code == 405


def test_the_grid_filters_photos_without_a_product(signed_in, workspace):
    make_photo(workspace, seed=1, product=ProductFactory(workspace=workspace), name="in.jpg")
    make_photo(workspace, seed=2, name="out.jpg")

    html = signed_in.get("/products/?product=none").content.decode()

    assert "out.jpg" in html
    assert "in.jpg" not in html
    assert '<option value="none" selected>No product</option>' in html


def test_a_malformed_product_filter_shows_every_photo(signed_in, workspace):
    make_photo(workspace, seed=1, name="a.jpg")

    response = signed_in.get("/products/photos/?product=abc")

    assert response.status_code == 200
    assert "a.jpg" in response.content.decode()


def test_a_brand_manager_manages_products_too(client, workspace):
    manager = MembershipFactory(workspace=workspace, role=Role.BRAND_MANAGER).user
    client.force_login(manager)

    response = client.post("/products/new/", {"title": "Lamp", "handle": "", "sku": ""})

    assert response.status_code == 302
    assert Product.objects.get().title == "Lamp"


# Deleting a photo -------------------------------------------------------------------------------


@pytest.fixture
def photo(upload_product_photo):
    return upload_product_photo((96, 72))


def generate(api, workspace, photo, django_capture_on_commit_callbacks, variants: int):
    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=2)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": variants, "channels": ["as-photo"]}, format="json")
    assert response.status_code == 202
    assets = list(Asset.objects.filter(photo=photo).order_by("variant"))
    assert len(assets) == variants
    return assets


@pytest.fixture
def generated(api, workspace, photo, django_capture_on_commit_callbacks):
    return generate(api, workspace, photo, django_capture_on_commit_callbacks, variants=2)


def test_the_photo_page_links_to_its_delete_confirmation(signed_in, photo):
    html = signed_in.get(f"/photos/{photo.pk}/").content.decode()

    assert f'<a class="button danger" href="/photos/{photo.pk}/delete/">Delete photo…</a>' in html


def test_a_photo_without_images_is_deleted_after_a_plain_confirmation(signed_in, workspace, photo, django_capture_on_commit_callbacks):
    product = ProductFactory(workspace=workspace, title="Mug")
    ProductPhoto.objects.filter(pk=photo.pk).update(product=product)

    confirmation = signed_in.get(f"/photos/{photo.pk}/delete/").content.decode()
    assert "Its 1 cutout revision is deleted, and its cutout and mask files removed, touch-up uploads included." in confirmation
    assert "<li>It has no generated images.</li>" in confirmation
    assert 'name="delete_assets"' not in confirmation
    assert ProductPhoto.objects.filter(pk=photo.pk).exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(f"/photos/{photo.pk}/delete/")

    assert response["Location"] == f"/products/{product.pk}/"  # back to the product it belonged to
    assert (ProductPhoto.objects.count(), Cutout.objects.count()) == (0, 0)
    assert stored_files() == []
    assert "Deleted box.png." in signed_in.get(response["Location"]).content.decode()


def test_deleting_a_photo_with_images_needs_the_tick_and_says_how_many(signed_in, generated, django_capture_on_commit_callbacks):
    photo = generated[0].photo
    before = stored_files()

    confirmation = signed_in.get(f"/photos/{photo.pk}/delete/").content.decode()
    assert "Its <strong>2 generated images</strong> are deleted with their files." in confirmation
    assert "Also delete its 2 generated images" in confirmation

    refused = signed_in.post(f"/photos/{photo.pk}/delete/")

    assert refused.status_code == 409
    assert "The photo was not deleted: it has 2 generated images." in refused.content.decode()
    assert (ProductPhoto.objects.count(), Asset.objects.count()) == (1, 2)
    assert stored_files() == before

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(f"/photos/{photo.pk}/delete/", {"delete_assets": "on"})

    assert response.status_code == 302
    assert (ProductPhoto.objects.count(), Asset.objects.count(), Cutout.objects.count()) == (0, 0, 0)
    assert [name for name in stored_files() if not name.startswith("brand/")] == []


def test_approved_unpublished_images_are_asked_about_a_second_time(signed_in, generated, django_capture_on_commit_callbacks):
    photo = generated[0].photo
    Asset.objects.filter(pk=generated[0].pk).update(review_state=ReviewState.APPROVED)
    before = stored_files()

    confirmation = signed_in.get(f"/photos/{photo.pk}/delete/").content.decode()
    assert "<strong>1 of them approved and not published yet</strong>" in confirmation
    assert 'name="delete_approved"' not in confirmation  # asked only once the delete is refused for it

    refused = signed_in.post(f"/photos/{photo.pk}/delete/", {"delete_assets": "on"})

    assert refused.status_code == 409
    html = refused.content.decode()
    assert "The photo was not deleted. Deleting this photo would lose 1 approved image that is not published yet." in html
    assert "Yes, also delete the 1 approved image that is not published yet" in html
    assert 'name="delete_assets" id="id_delete_assets" checked' in html  # the first tick is kept
    assert (ProductPhoto.objects.count(), Asset.objects.count()) == (1, 2)
    assert stored_files() == before

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(f"/photos/{photo.pk}/delete/", {"delete_assets": "on", "delete_approved": "on"})

    assert response.status_code == 302
    assert (ProductPhoto.objects.count(), Asset.objects.count()) == (0, 0)


def test_published_images_need_no_second_tick(signed_in, generated, django_capture_on_commit_callbacks):
    photo = generated[0].photo
    Asset.objects.filter(pk=generated[0].pk).update(review_state=ReviewState.PUBLISHED)

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(f"/photos/{photo.pk}/delete/", {"delete_assets": "on"})

    assert response.status_code == 302
    assert ProductPhoto.objects.count() == 0


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_workspaces_photo_cannot_be_deleted_from_a_page(signed_in, other_membership, method):
    theirs = make_photo(other_membership.workspace)

    assert getattr(signed_in, method)(f"/photos/{theirs.pk}/delete/", {"delete_assets": "on"}).status_code == 404
    assert ProductPhoto.objects.filter(pk=theirs.pk).exists()
