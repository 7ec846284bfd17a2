"""Every page works under the Content-Security-Policy, in real headless Chromium: the demo
brand manager and owner open every page of the left navigation, a product, a photo, compose,
a job, an asset, the review queue, the gallery, a brand kit, settings and the API docs, while
the test listens to the console and to `securitypolicyviolation` events. Zero violations, and
each page's own script visibly ran.

The one real image is made by the bundled model in this process (the test settings run tasks
once each write commits), so no worker process is needed."""
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from brand.models import BrandKit, ScenePreset
from catalog.models import Product, User, Workspace
from catalog.services import DEMO_PASSWORD
from studio import reviews
from studio.models import Asset
from studio.services import generation_job_create, photo_add
from tests.images import product_on_white
from tests.studio.conftest import sign_in

pytestmark = pytest.mark.browser

LISTEN = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__vitrineCsp(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
}, true);
"""


@pytest.fixture
def demo(live_server):
    """The demo workspace with one real generated image, submitted for review."""
    call_command("seed_demo", stdout=io.StringIO())  # what `make run` does
    workspace = Workspace.objects.get(slug="demo")
    merchant = User.objects.get(email="merchant@demo.vitrine")
    ScenePreset.objects.filter(workspace=workspace).update(steps=2)
    product = Product.objects.get(workspace=workspace, title="Amber glass bottle")
    upload = SimpleUploadedFile("bottle.png", product_on_white(size=(256, 192), seed=3))
    photo = photo_add(workspace=workspace, file=upload, uploaded_by=merchant, product=product).photo
    job = generation_job_create(photo=photo, user=merchant, variants=1, seed=7, channels=["as-photo"])
    job.refresh_from_db()
    assert (job.status, job.error) == ("succeeded", "")
    asset = Asset.objects.get(job=job)
    reviews.review_submit(asset=asset, actor=merchant)
    return {"photo": photo, "job": job, "asset": asset, "product": product, "kit": BrandKit.objects.filter(workspace=workspace).first()}


@pytest.fixture
def watched(browser):
    """A page whose CSP violations and console errors are collected across navigations."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    context.expose_function("__vitrineCsp", lambda text: problems.append(f"violation: {text}"))
    context.add_init_script(LISTEN)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text} ({page.url})") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e} ({page.url})"))
    yield page, problems
    context.close()


def pump_until(page, predicate, seconds: float = 5.0) -> bool:
    """Let Playwright deliver the page's callbacks (they arrive only while it is called) until
    `predicate()` holds or `seconds` pass."""
    for _ in range(int(seconds * 10)):
        if predicate():
            return True
        page.wait_for_timeout(100)
    return predicate()


def visit(page, url: str) -> None:
    response = page.goto(url)
    assert response.status == 200, f"{url}: {response.status}"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-eval'" not in policy
    page.wait_for_load_state("networkidle")


def nav_links(page) -> list[str]:
    return page.locator("nav.sidenav ul a").evaluate_all("links => links.map(a => a.href)")


def check_pages(page, base: str, demo: dict) -> list[str]:
    seen = []
    visit(page, f"{base}/products/")
    links = nav_links(page)
    assert [link.removeprefix(base) for link in links] == [
        "/products/", "/review/", "/gallery/", "/notifications/", "/brand-kits/", "/storefronts/", "/settings/", "/api/docs/",
    ]
    for link in links:
        visit(page, link)
        seen.append(link.removeprefix(base))
        if link.endswith("/products/"):
            page.wait_for_selector("#dropzone[data-ready='1']")  # upload.js ran
        elif link.endswith("/review/"):
            page.locator("#review-detail .compare-range").wait_for()  # review.js loaded the first item through htmx
        elif link.endswith("/gallery/"):
            page.locator("#select-all").check()
            assert page.locator("#selected-count").inner_text() == "1 selected"  # gallery.js ran
        elif link.endswith("/storefronts/"):
            page.locator("#connect").wait_for()
        elif link.endswith("/settings/"):
            page.locator("#tokens").wait_for()
        elif link.endswith("/api/docs/"):
            page.locator(".opblock").first.wait_for()  # Swagger UI rendered the operations
            assert page.locator(".opblock").count() > 20
    product_url = f"{base}/products/{demo['product'].pk}/"
    visit(page, product_url)
    page.wait_for_selector("#dropzone[data-ready='1']")
    visit(page, f"{base}/photos/{demo['photo'].pk}/")
    page.wait_for_selector("#mask-editor[data-ready='1']")  # mask-editor.js ran
    visit(page, f"{base}/photos/{demo['photo'].pk}/compose/")
    radios = page.locator("input[name=preset]")
    assert radios.count() >= 2
    last = radios.nth(radios.count() - 1)
    last.check()
    assert page.locator("#prompt-hint").inner_text() == (last.get_attribute("data-prompt-note") or "")  # compose.js ran
    visit(page, f"{base}/jobs/{demo['job'].pk}/")
    slider = page.locator(".compare-range").first
    slider.fill("60")
    assert "inset(0px 40% 0px 0px)" in page.locator(".compare-before").first.get_attribute("style")  # compare.js ran
    visit(page, f"{base}/assets/{demo['asset'].pk}/")
    page.locator(".compare-range").first.fill("30")
    assert "inset(0px 70% 0px 0px)" in page.locator(".compare-before").first.get_attribute("style")
    visit(page, f"{base}/brand-kits/{demo['kit'].pk}/")
    colour = page.locator("input[type=color]").first
    colour.fill("#123456")
    assert page.locator(f"output[data-hex-of='{colour.get_attribute('id')}']").inner_text() == "#123456"  # brand-kit.js ran
    return seen


@pytest.mark.parametrize("email", ["brand@demo.vitrine", "owner@demo.vitrine"])
def test_every_page_runs_under_the_policy_with_zero_violations(live_server, demo, watched, email):
    page, problems = watched

    sign_in(page, live_server.url, email, DEMO_PASSWORD)
    seen = check_pages(page, live_server.url, demo)

    assert seen == ["/products/", "/review/", "/gallery/", "/notifications/", "/brand-kits/", "/storefronts/", "/settings/", "/api/docs/"]
    assert problems == []


def test_an_inline_script_is_blocked_and_reported(live_server, watched):
    """The listener itself works: an injected inline script is refused and reported."""
    page, problems = watched
    call_command("seed_demo", stdout=io.StringIO())
    sign_in(page, live_server.url, "brand@demo.vitrine", DEMO_PASSWORD)
    visit(page, f"{live_server.url}/products/")

    page.evaluate("""() => { const s = document.createElement("script"); s.textContent = "window.__ran = true"; document.body.append(s); }""")
    reported = pump_until(page, lambda: any(p.startswith("violation: script-src-elem blocked inline") for p in problems))

    assert page.evaluate("() => window.__ran === true") is False
    assert reported, problems
