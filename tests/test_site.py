"""Browser test of the built book: every page of ``_build/html``, in Chromium.

The site is served from ``_build/html`` on 127.0.0.1 (a free port) by a thread
running :mod:`http.server`, and opened in headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright's sync API). For every HTML page
the test asserts that

(a) nothing is requested from any host other than 127.0.0.1 (the book must
    read offline: MathJax, fonts and scripts are served by the site itself);
(b) math renders: on a page with math, MathJax finishes typesetting, produces
    ``mjx-container`` elements, reports no error and leaves no raw TeX behind;
(c) every ``<img>`` has loaded;
(d) every internal link resolves: the target page answers HTTP 200 and the
    ``#fragment``, if any, is the id of an element on it;
(e) the page logs no console error and throws no uncaught exception, except
    for messages matching ALLOW_LIST;
(f) the errata page, at 1366 × 900, has nothing wider than its text column and
    does not scroll sideways (test_errata_page_reads_without_horizontal_scrolling).

The book must be built first (``make book``; ``make test`` does it): without
``_build/html/index.html`` the tests fail, they are not skipped.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

# Console errors and uncaught page errors that are proven harmless. Each key is
# a regular expression searched in the message ("console.error: ..." or
# "pageerror: ..."); each value is the sentence that says why it is harmless.
# Add an entry only with that proof; the list starts empty.
ALLOW_LIST: dict[str, str] = {}

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
HOST = "127.0.0.1"
CHROMIUM = Path(os.environ.get("BNBACKPROP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NOT_BUILT = (
    f"The book is not built: {SITE / 'index.html'} does not exist. "
    "Build it first with `make book` (`make test` builds it before running pytest)."
)
# Directories of the built site that hold assets, not pages.
ASSET_DIRS = {"_static", "_sources", "_images"}

# Pages the book must have, relative to _build/html.
EXPECTED_PAGES = [
    "index.html",
    "chapters/index.html",
    "chapters/notation.html",
    "chapters/batchnorm_backward.html",
    "chapters/errata.html",
    "chapters/api.html",
    "chapters/bibliography.html",
]
# Functions the API reference must document (their Sphinx anchors).
API_OBJECTS = ["bnbackprop.batchnorm.forward", "bnbackprop.batchnorm.backward"]
API_MODULES = [
    "bnbackprop.batchnorm",
    "bnbackprop.gradcheck",
    "bnbackprop.symbolic",
    "bnbackprop.loops",
]

NAVIGATION_TIMEOUT_MS = 30_000
MATHJAX_TIMEOUT_MS = 30_000


def _site_pages() -> list[str]:
    """Every HTML page of the built site, relative to _build/html."""
    if not (SITE / "index.html").is_file():
        # One test that fails with NOT_BUILT, rather than an empty (skipped) set.
        return ["<book not built>"]
    return sorted(
        path.relative_to(SITE).as_posix()
        for path in SITE.rglob("*.html")
        if not ASSET_DIRS.intersection(path.relative_to(SITE).parts[:-1])
    )


def _require_site() -> None:
    if not (SITE / "index.html").is_file():
        pytest.fail(NOT_BUILT, pytrace=False)


def _is_local(url: str) -> bool:
    """True for URLs that never leave the machine: the site itself and inline data."""
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob", "about"}:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname == HOST


def _allowed(message: str) -> bool:
    return any(re.search(pattern, message) for pattern in ALLOW_LIST)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Anchors(HTMLParser):
    """Collects the fragment targets of a page: every id, and <a name=...>."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is not None and (name == "id" or (tag == "a" and name == "name")):
                self.ids.add(value)


class LinkChecker:
    """Fetches each internal target once (outside the browser) and remembers its anchors."""

    def __init__(self) -> None:
        self._pages: dict[str, tuple[int, set[str]]] = {}

    def target(self, url: str) -> tuple[int, set[str]]:
        if url not in self._pages:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    status = response.status
                    body = response.read()
                    is_html = "html" in response.headers.get("Content-Type", "")
            except urllib.error.HTTPError as error:
                status, body, is_html = error.code, b"", False
            anchors = _Anchors()
            if is_html:
                anchors.feed(body.decode("utf-8", errors="replace"))
            self._pages[url] = (status, anchors.ids)
        return self._pages[url]

    def problems(self, links: list[str], site_url: str) -> list[str]:
        found = []
        for link in sorted(set(links)):
            if not link.startswith(site_url):
                continue  # another origin, or mailto:/javascript:; nothing is fetched
            page_url, fragment = urldefrag(link)
            status, ids = self.target(page_url)
            if status != 200:
                found.append(f"{link}: HTTP {status}")
            elif fragment and unquote(fragment) not in ids:
                found.append(f"{link}: no element with id {unquote(fragment)!r} on the target page")
        return found


def _meta_refresh_target(file: Path) -> str | None:
    """The URL a page redirects to with <meta http-equiv="refresh">, if it does."""
    text = file.read_text(encoding="utf-8", errors="replace") if file.is_file() else ""
    meta = re.search(r"<meta[^>]+http-equiv=[\"']?refresh[^>]*>", text, flags=re.IGNORECASE)
    if not meta:
        return None
    target = re.search(r"url=([^\"'>]+)", meta.group(0), flags=re.IGNORECASE)
    assert target, f"{file}: unreadable meta refresh {meta.group(0)!r}"
    return target.group(1).strip()


# The fixtures below are requested from inside the tests, after
# _require_site(), so that an unbuilt site makes the tests fail (not error).


@pytest.fixture(scope="session")
def site_url() -> Iterator[str]:
    """Serves _build/html on 127.0.0.1, on a free port, for the whole session."""
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh profile; requests off the machine are blocked."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (`apt-get install chromium`); .ci/run does it.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            service_workers="block",
        )
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        # Requests are recorded by each test; anything non-local is also
        # refused here, so that a stray CDN link fails fast instead of hanging.
        context.route(lambda url: not _is_local(url), lambda route: route.abort("blockedbyclient"))
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="session")
def link_checker() -> LinkChecker:
    return LinkChecker()


class PageVisit:
    """One page opened in the browser, with everything it requested and logged."""

    def __init__(self, context: BrowserContext) -> None:
        self.page: Page = context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _on_console(self, message) -> None:
        if message.type == "error":
            location = message.location.get("url", "")
            self.errors.append(f"console.error: {message.text} ({location})")

    def open(self, site_url: str, path: str) -> None:
        """Opens a page of the site and waits until it and what it loads are done."""
        url = site_url + path
        # Jupyter Book's top-level index.html is a <meta http-equiv="refresh">
        # redirect to the root page: follow it before checking anything.
        redirect = _meta_refresh_target(SITE / path)
        response = self.page.goto(url, wait_until="commit" if redirect else "load")
        assert response is not None, f"no response for {url}"
        assert response.status == 200, f"{url}: HTTP {response.status}"
        if redirect:
            self.page.wait_for_url(urljoin(url, redirect), wait_until="load")
        self.page.wait_for_load_state("networkidle")

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def open_site(request: pytest.FixtureRequest) -> Iterator[Callable[[], tuple[str, PageVisit]]]:
    """Returns a function that checks the site is built, then starts a visit.

    It gives back the site's URL and a fresh page; the page is closed after the test.
    """
    visits: list[PageVisit] = []

    def start() -> tuple[str, PageVisit]:
        _require_site()
        site_url = request.getfixturevalue("site_url")
        visits.append(PageVisit(request.getfixturevalue("browser")))
        return site_url, visits[-1]

    try:
        yield start
    finally:
        for page_visit in visits:
            page_visit.close()


# Text of the page outside code, used to find TeX that MathJax should render.
_TEXT_OUTSIDE_CODE = """() => {
    const body = document.body.cloneNode(true);
    body.querySelectorAll(
        'pre, code, script, style, textarea, mjx-container, .tex2jax_ignore, .mathjax_ignore'
    ).forEach(e => e.remove());
    return body.textContent;
}"""
_RAW_TEX = re.compile(r"\\\(|\\\[|\$\$")

_MATH_REPORT = """() => {
  // The TeX of a typeset formula, read back from MathJax's assistive MathML.
  const source = e => {
    const container = e.closest('mjx-container');
    const mml = container && container.querySelector('mjx-assistive-mml');
    return (mml ? mml.textContent : e.textContent).slice(0, 80);
  };
  return {
    containers: document.querySelectorAll('mjx-container').length,
    errors: Array.from(new Set(
        Array.from(document.querySelectorAll('mjx-merror, [data-mjx-error]'))
            .map(e => e.getAttribute('data-mjx-error') || source(e)))),
    // An undefined macro is typeset as its own name, in red.
    red: Array.from(document.querySelectorAll('mjx-container [style*="color: red"]'))
        .map(source),
    unrendered: Array.from(document.querySelectorAll('.math'))
        .filter(e => !e.querySelector('mjx-container') && e.tagName !== 'MJX-CONTAINER')
        .map(e => e.textContent.slice(0, 80)),
  };
}"""

_BROKEN_IMAGES = """async () => {
    const images = Array.from(document.images);
    images.forEach(img => { img.loading = 'eager'; });
    await Promise.all(images.map(img => img.decode().catch(() => null)));
    return images
        .filter(img => !(img.complete && img.naturalWidth > 0))
        .map(img => img.currentSrc || img.src || img.outerHTML.slice(0, 120));
}"""


def _check_math(page: Page) -> list[str]:
    has_math = page.locator(".math").count() > 0 or bool(_RAW_TEX.search(page.evaluate(_TEXT_OUTSIDE_CODE)))
    if not has_math:
        return []
    try:
        page.wait_for_function(
            "() => window.MathJax && window.MathJax.startup && window.MathJax.startup.promise",
            timeout=MATHJAX_TIMEOUT_MS,
        )
        page.evaluate("() => window.MathJax.startup.promise")
    except Exception as error:  # a Playwright timeout or a rejected promise
        return [f"MathJax did not load or did not finish typesetting: {error}"]
    report = page.evaluate(_MATH_REPORT)
    problems = []
    if report["containers"] == 0:
        problems.append("the page has math but MathJax rendered no mjx-container")
    problems += [f"MathJax error: {text}" for text in report["errors"]]
    problems += [f"MathJax rendered in red (undefined macro?): {text}" for text in report["red"]]
    problems += [f"math element not typeset: {text}" for text in report["unrendered"]]
    leftover = _RAW_TEX.findall(page.evaluate(_TEXT_OUTSIDE_CODE))
    if leftover:
        problems.append(f"raw TeX delimiters left in the page text: {sorted(set(leftover))}")
    body_text = page.inner_text("body")
    for phrase in ("Math input error", "Math output error", "Math Processing Error"):
        if phrase in body_text:
            problems.append(f"the page says {phrase!r}")
    return problems


@pytest.mark.parametrize("path", _site_pages())
def test_page(path: str, open_site, link_checker: LinkChecker) -> None:
    site_url, visit = open_site()
    visit.open(site_url, path)
    page = visit.page

    # (b) math renders; done first, since typesetting may load fonts.
    math_problems = _check_math(page)
    page.wait_for_load_state("networkidle")

    # (a) nothing requested from off the machine.
    offsite = sorted({url for url in visit.requests if not _is_local(url)})
    assert not offsite, f"{path} requested URLs outside 127.0.0.1:\n  " + "\n  ".join(offsite)

    assert not math_problems, f"{path}: math does not render:\n  " + "\n  ".join(math_problems)

    # (c) every image loaded.
    broken = page.evaluate(_BROKEN_IMAGES)
    assert not broken, f"{path}: images that did not load:\n  " + "\n  ".join(broken)

    # (d) every internal link and #anchor resolves.
    links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    dead = link_checker.problems(links, site_url)
    assert not dead, f"{path}: broken internal links:\n  " + "\n  ".join(dead)

    # (e) no console errors or uncaught exceptions, unless proven harmless.
    errors = [message for message in visit.errors if not _allowed(message)]
    assert not errors, f"{path}: console errors:\n  " + "\n  ".join(errors)


def test_site_has_the_expected_pages() -> None:
    _require_site()
    missing = [page for page in EXPECTED_PAGES if not (SITE / page).is_file()]
    assert not missing, f"pages missing from {SITE}: {missing}"


def test_api_page_documents_the_library(open_site) -> None:
    site_url, visit = open_site()
    visit.open(site_url, "chapters/api.html")
    page = visit.page
    for module in API_MODULES:
        assert page.locator(f'[id="module-{module}"]').count() == 1, f"the API page has no section for module {module}"
        members = page.locator(f'dt.sig[id^="{module}."]').count()
        assert members > 0, f"the API page documents nothing from {module}"
    for name in API_OBJECTS:
        signature = page.locator(f'dt.sig[id="{name}"]')
        assert signature.count() == 1, f"the API page does not document {name}"
        assert name.rsplit(".", 1)[1] in signature.inner_text()


def test_every_chapter_notebook_is_in_the_book() -> None:
    _require_site()
    notebooks = sorted((ROOT / "chapters").glob("*.ipynb"))
    assert notebooks, "no notebooks in chapters/"
    missing = [
        f"chapters/{notebook.name}"
        for notebook in notebooks
        if not (SITE / "chapters" / f"{notebook.stem}.html").is_file()
    ]
    assert not missing, f"notebooks with no page in the built book (add them to _toc.yml): {missing}"


def test_notebook_pages_offer_the_notebook_for_download(open_site) -> None:
    site_url, visit = open_site()
    stems = sorted(
        notebook.stem
        for notebook in (ROOT / "chapters").glob("*.ipynb")
        if (SITE / "chapters" / f"{notebook.stem}.html").is_file()
    )
    assert stems, "the built book has no notebook pages"
    for stem in stems:
        visit.open(site_url, f"chapters/{stem}.html")
        downloads = visit.page.eval_on_selector_all('a[href$=".ipynb"]', "els => els.map(e => e.href)")
        assert f"{site_url}_sources/chapters/{stem}.ipynb" in downloads, (
            f"chapters/{stem}.html has no download link for its notebook (found {downloads})"
        )


# The errata page must read at a common laptop width: every column of every
# entry visible, nothing cut off and no horizontal scrolling.
READING_VIEWPORT = {"width": 1366, "height": 900}

# Elements of the page's article that stick out of it, or that scroll sideways
# (a table wrapper or a display with overflow-x: auto hides what is cut off).
_WIDE_ELEMENTS = """() => {
  const article = document.querySelector('main article') || document.querySelector('article');
  if (!article) return {article: false, wide: [], page: 0};
  const box = article.getBoundingClientRect();
  const describe = e => {
    const cls = (typeof e.className === 'string' && e.className) ? '.' + e.className.split(' ')[0] : '';
    return `${e.tagName.toLowerCase()}${cls}: "${(e.textContent || '').trim().slice(0, 60)}"`;
  };
  const wide = [];
  for (const e of article.querySelectorAll('*')) {
    // MathJax's assistive MathML is clipped to nothing on purpose.
    if (e.closest('mjx-assistive-mml')) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right > box.right + 1 || r.left < box.left - 1) {
      wide.push(`${describe(e)} spans ${Math.round(r.left)}..${Math.round(r.right)}px, `
                + `outside the article's ${Math.round(box.left)}..${Math.round(box.right)}px`);
    } else if (e.scrollWidth > e.clientWidth + 1
               && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)) {
      wide.push(`${describe(e)} scrolls sideways: ${e.scrollWidth}px of content in ${e.clientWidth}px`);
    }
  }
  const root = document.scrollingElement || document.documentElement;
  return {article: true, wide: wide, page: root.scrollWidth - root.clientWidth};
}"""


def test_errata_page_reads_without_horizontal_scrolling(open_site) -> None:
    site_url, visit = open_site()
    visit.page.set_viewport_size(READING_VIEWPORT)
    visit.open(site_url, "chapters/errata.html")
    math_problems = _check_math(visit.page)  # typesetting changes the widths
    assert not math_problems, "chapters/errata.html: math does not render:\n  " + "\n  ".join(math_problems)
    report = visit.page.evaluate(_WIDE_ELEMENTS)
    assert report["article"], "chapters/errata.html has no <article> element"
    assert report["page"] <= 0, f"chapters/errata.html scrolls sideways by {report['page']}px at 1366 px wide"
    wide = sorted(set(report["wide"]))
    assert not wide, (
        f"chapters/errata.html at {READING_VIEWPORT['width']}x{READING_VIEWPORT['height']}: "
        f"{len(wide)} element(s) wider than the page's text column:\n  " + "\n  ".join(wide[:20])
    )
