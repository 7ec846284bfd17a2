import io


def sign_in(page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def choose_photos(page, paths) -> None:
    """Pick files with the page's own upload control, once its script is listening."""
    page.wait_for_selector("#dropzone[data-ready='1']")
    page.locator("#photo-input").set_input_files([str(p) for p in paths])


def merchant_uploads_a_product_photo(page, base_url: str, folder, name: str = "red-box.png") -> None:
    """The demo merchant signs in and uploads one studio product photo through the page's own
    control, and waits until the page says it is uploaded."""
    from django.core.management import call_command

    from catalog.services import DEMO_PASSWORD
    from tests.images import product_on_white

    call_command("seed_demo", stdout=io.StringIO())  # what `make run` does
    path = folder / name
    path.write_bytes(product_on_white(size=(480, 360)))
    sign_in(page, base_url, "merchant@demo.vitrine", DEMO_PASSWORD)
    choose_photos(page, [path])
    page.locator("#uploads li", has_text=name).locator(".upload-state", has_text="Uploaded").wait_for()
