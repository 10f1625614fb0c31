"""The built site, opened in a real browser (headless Chromium through Playwright).

Runs after the book is built (`make test` does this last): every page of the table of contents
is served from `_build/html` on localhost and checked as a reader would see it. Screenshots, in
the light and the dark theme, go to `_build/screenshots/` for review.
"""

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = pytest.mark.browser


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").exists():
        pytest.fail("build the book first (make book): _build/html/index.html is missing")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed; `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()


@pytest.mark.parametrize("page_path", toc_pages())
def test_page_reads_cleanly(server, browser, page_path):
    source = (ROOT / f"{page_path}.md").read_text()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    failed_requests = []
    page.on("requestfailed", lambda request: failed_requests.append(request.url))
    page.goto(f"{server}/{page_path}.html", wait_until="load")
    has_math = bool(re.search(r"\$|\\\(|\{math\}|prf:", source))
    if has_math:
        page.wait_for_function("() => window.MathJax && window.MathJax.startup", timeout=20_000)
        page.evaluate("() => window.MathJax.startup.promise")

    # No Python errors rendered into the page.
    text = page.inner_text("main")
    assert "Traceback (most recent call last)" not in text
    assert page.locator(".output.traceback, .output.error, .output.stderr").count() == 0

    # Every image loaded, and figures are described by their caption.
    broken = page.evaluate(
        "() => [...document.images]"
        ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    assert broken == [], f"images that did not load: {broken}"
    uncaptioned = page.evaluate(
        "() => [...document.querySelectorAll('main img')].filter(i => i.src.includes('_images/'))"
        ".filter(i => !i.closest('figure') || !i.closest('figure').querySelector('figcaption'))"
        ".length"
    )
    assert uncaptioned == 0, "every figure of a chapter has a caption"
    # Alt text describes the figure (Sphinx's fallback is the file path).
    bad_alt = page.evaluate(
        "() => [...document.querySelectorAll('main img')].filter(i => i.src.includes('_images/'))"
        ".filter(i => !i.alt || i.alt.includes('_images/')).map(i => i.src)"
    )
    assert bad_alt == [], f"figures without alt text: {bad_alt}"
    # A figure whose image failed to render (e.g. a bad maths label) shows only its caption.
    empty_figures = page.evaluate(
        "() => [...document.querySelectorAll('main figure')]"
        ".filter(f => !f.querySelector('img, svg')).map(f => f.id)"
    )
    assert empty_figures == [], f"figures without an image: {empty_figures}"

    # Maths is typeset: MathJax output present, no raw TeX delimiters left in the text.
    if has_math:
        assert page.locator("mjx-container").count() > 0
        assert "$$" not in text and "\\(" not in text and "\\[" not in text

    # Launch buttons point at files that exist in the repository.
    for href in page.evaluate("() => [...document.querySelectorAll('a')].map(a => a.href)"):
        match = re.search(r"mybinder\.org/v2/gh/[^/]+/[^/]+/[^?]+\?urlpath=lab/tree/(.+)$", href)
        if match:
            assert (ROOT / match.group(1)).exists(), f"Binder link to a missing file: {href}"
        colab = re.search(r"colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/(.+)$", href)
        if colab:
            notebook = Path(colab.group(1))
            assert notebook.suffix == ".ipynb", f"Colab opens .ipynb only: {href}"
            assert (ROOT / notebook.with_suffix(".md")).exists(), f"no chapter behind {href}"
    assert not [url for url in failed_requests if url.startswith(server)], failed_requests

    SHOTS.mkdir(parents=True, exist_ok=True)
    name = page_path.replace("/", "__")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.evaluate("() => { document.documentElement.dataset.theme = 'dark'; }")
    page.screenshot(path=str(SHOTS / f"{name}-dark.png"), full_page=False)
    page.close()
