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
    does not scroll sideways (test_errata_page_reads_without_horizontal_scrolling);
(g) every page reads on three screens, 390 × 844 (phone), 820 × 1180 (tablet) and
    1366 × 768 (laptop) (test_page_on_screen): after MathJax has run, no ``$``,
    TeX command or TeX sub/superscript (``W_{t-1}``) is left in the visible text
    outside code and rendered math; no display
    equation is cut off (at 1366 px none is wider than its column; narrower, one
    may scroll inside its own box); at 390 px the document is no wider than the
    screen; no printed output scrolls sideways; a cell's printed output is one
    block (merged streams); the solutions of exercises are hidden with their
    output; at 1366 px there is one search box, the page's <title> and the
    sidebar name the book once, the page has a favicon, and every picture in the
    text has alt text that describes it, sits in a numbered figure with a
    caption, and is an SVG or a bitmap at least twice as wide as it is shown;
(h) at 820 and 390 px every visible sidebar toggle (☰) and contents toggle opens
    its panel on screen, and at 1366 px the ☰ collapses and restores the sidebar
    (test_sidebar_toggles_work);
(i) the checks of (g) find what they look for on a page made to fail them
    (test_screen_checks_can_fail).

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

NAVIGATION_TIMEOUT_MS = 60_000  # generous: the tests may share two busy cores
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
        self.failed: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on(
            "response",
            lambda response: (
                self.failed.append(f"{response.url}: HTTP {response.status}") if response.status >= 400 else None
            ),
        )
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
        'pre, code, script, style, textarea, mjx-container'
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

    # (d') nothing the page asked for (a script, a font, the favicon) is missing.
    assert not visit.failed, f"{path}: requests that failed:\n  " + "\n  ".join(sorted(set(visit.failed)))

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


# ---- Every page on three screens ---------------------------------------------------

SCREENS = {
    "phone": {"width": 390, "height": 844},
    "tablet": {"width": 820, "height": 1180},
    "laptop": {"width": 1366, "height": 768},
}

# Text nodes that the reader sees, outside code and rendered math, holding a dollar
# sign or a TeX command: math that MathJax did not typeset (or prose that was meant
# to be math), as "…context…" strings.
_RAW_TEX_IN_VISIBLE_TEXT = r"""() => {
  // Not .tex2jax_ignore / .mathjax_ignore: MyST puts every page's text in a section
  // with those classes (MathJax then typesets only its .math elements), so they are
  // exactly where untypeset TeX stays.
  const skip = 'pre, code, kbd, samp, script, style, textarea, mjx-container';
  // A dollar, a TeX command or delimiter, or a TeX sub- or superscript (W_{t-1}, e^{y-c}).
  const pattern = /\$|\\[A-Za-z]+|\\[()[\]{}]|[_^]\{/g;
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(skip) || !parent.checkVisibility()) continue;
    const text = node.textContent;
    for (const match of text.matchAll(pattern)) {
      const start = Math.max(0, match.index - 30);
      found.push(`${match[0]} in "${text.slice(start, match.index + 30).replace(/\s+/g, ' ').trim()}"`);
    }
  }
  return found;
}"""

# Opens every closed <details> except exercise solutions (code cells, tag hide-cell),
# and returns how many it opened; _CLOSE_DETAILS folds them again.
_OPEN_DETAILS = """() => {
  const closed = Array.from(document.querySelectorAll('details:not([open])'))
    .filter(d => !d.closest('.cell'));
  closed.forEach(d => { d.open = true; d.dataset.bnbackpropOpened = '1'; });
  return closed.length;
}"""
_CLOSE_DETAILS = """(count) => {
  const opened = document.querySelectorAll('details[data-bnbackprop-opened]');
  opened.forEach(d => { d.open = false; delete d.dataset.bnbackpropOpened; });
  return opened.length === count;
}"""

# Every visible display equation: how much of it does not fit its box, whether the
# box scrolls, and whether the box sticks out of the article.
_DISPLAYS = """() => {
  const article = document.querySelector('main article') || document.body;
  const column = article.getBoundingClientRect();
  const source = e => {
    try {
      const items = window.MathJax.startup.document.getMathItemsWithin(e);
      if (items.length) return items[0].math.trim().replace(/\\s+/g, ' ').slice(0, 70);
    } catch (error) {}
    return (e.textContent || '').trim().slice(0, 70);
  };
  return Array.from(document.querySelectorAll('mjx-container[display="true"]'))
    .filter(e => e.checkVisibility())
    .map(e => {
      const box = e.getBoundingClientRect();
      return {
        tex: source(e),
        hidden: e.scrollWidth - e.clientWidth,
        scrolls: ['auto', 'scroll'].includes(getComputedStyle(e).overflowX),
        outside: box.right > column.right + 1 || box.left < column.left - 1,
        width: Math.round(box.width),
        column: Math.round(column.width),
      };
    });
}"""

# How far the document scrolls sideways, and the innermost elements that stick out
# of the screen (not counting what is inside a box that scrolls or clips).
_PAGE_WIDTH = """() => {
  const root = document.scrollingElement || document.documentElement;
  const width = root.clientWidth;
  const contained = e => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') return true;
    }
    return false;
  };
  const out = e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && (r.right > width + 1 || r.left < -1)
      && getComputedStyle(e).position !== 'fixed' && !contained(e);
  };
  const culprits = Array.from(document.body.querySelectorAll('*'))
    .filter(e => e.checkVisibility() && out(e) && !Array.from(e.children).some(out))
    .slice(0, 12)
    .map(e => {
      const cls = (typeof e.className === 'string' && e.className) ? '.' + e.className.split(' ')[0] : '';
      const r = e.getBoundingClientRect();
      return `${e.tagName.toLowerCase()}${cls} "${(e.textContent || '').trim().slice(0, 50)}" `
             + `spans ${Math.round(r.left)}..${Math.round(r.right)}px`;
    });
  return {excess: root.scrollWidth - width, culprits: culprits};
}"""

# Printed outputs: blocks that scroll sideways (a long line cut at the column's edge)
# and cells whose stdout is split into several blocks.
_OUTPUTS = """() => {
  const outputs = Array.from(document.querySelectorAll('.cell_output'));
  return {
    cut: Array.from(document.querySelectorAll('.cell_output pre'))
      .filter(e => e.checkVisibility() && e.scrollWidth > e.clientWidth + 1)
      .map(e => {
        const longest = (e.textContent || '').split('\\n').reduce((a, b) => b.length > a.length ? b : a, '');
        return `${e.scrollWidth - e.clientWidth}px hidden: "${longest.slice(0, 70)}"`;
      }),
    split: outputs
      .filter(e => e.querySelectorAll(':scope > .output.stream').length > 1)
      .map(e => `${e.querySelectorAll(':scope > .output.stream').length} blocks: `
                + `"${(e.textContent || '').trim().slice(0, 60)}"`),
  };
}"""

# Solution cells (tag hide-cell): is their code or their output on screen?
_HIDDEN_SOLUTIONS = """() => Array.from(document.querySelectorAll('.cell.tag_hide-cell'))
  .filter(c => Array.from(c.querySelectorAll('.cell_input, .cell_output')).some(e => e.checkVisibility()))
  .map(c => (c.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 80))"""

# Search boxes and buttons a reader sees on the first screen.
# The theme scrolls the sidebar to the current page's link, which on pages low in the
# contents takes the sidebar's search box above the screen: scroll back to the top first.
_SEARCH_BOXES = """() => (
  window.scrollTo(0, 0),
  document.querySelectorAll('.bd-sidebar-primary, .bd-sidebar-primary *').forEach(e => { e.scrollTop = 0; }),
  Array.from(document.querySelectorAll(
    '.search-button-field, .search-button, form.bd-search, input[type="search"]'))
  .filter(e => {
    if (!e.checkVisibility() || (e.parentElement && e.parentElement.closest('form.bd-search'))) return false;
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < window.innerHeight;
  })
  .map(e => `${e.tagName.toLowerCase()}.${(e.className || '').split(' ').join('.')} at `
            + `${Math.round(e.getBoundingClientRect().left)},${Math.round(e.getBoundingClientRect().top)}`))"""

# The page's chrome: its <title>, the sidebar's visible text, the favicon, the footer.
_CHROME = """() => {
  const sidebar = document.querySelector('#pst-primary-sidebar');
  const icon = document.querySelector('link[rel~="icon"]');
  const footer = document.querySelector('.bd-footer-content');
  return {
    title: document.title,
    sidebar: sidebar && sidebar.checkVisibility() ? sidebar.innerText : '',
    icon: icon ? icon.href : null,
    footer: footer ? footer.innerText.trim() : '',
  };
}"""

# Every picture in the text: its alt text and the figure, number and caption around it.
_IMAGES = """() => Array.from(document.querySelectorAll('main article img, article img')).map(img => {
  const figure = img.closest('figure');
  const caption = figure && figure.querySelector('figcaption');
  const number = caption && caption.querySelector('.caption-number');
  return {
    src: img.getAttribute('src') || '',
    alt: (img.getAttribute('alt') || '').trim(),
    natural: img.naturalWidth,
    shown: img.getBoundingClientRect().width,
    number: number ? number.textContent.trim() : '',
    caption: caption ? caption.textContent.replace(number ? number.textContent : '', '').trim() : '',
  };
})"""

# Alt text that is a file name or a hash rather than a description.
_FILE_NAME = re.compile(r"(^|/)[\w.-]+\.(png|jpe?g|svg|gif|webp)$|^[0-9a-f]{12,}$", re.IGNORECASE)


def _image_problems(images: list[dict]) -> list[str]:
    problems = []
    for image in images:
        name = image["src"].rsplit("/", 1)[-1][:40]
        alt = image["alt"]
        if not alt or _FILE_NAME.search(alt) or len(alt.split()) < 3:
            problems.append(f"{name}: alt text {alt[:60]!r} does not describe the picture")
        if not image["number"]:
            problems.append(f"{name}: not in a numbered figure")
        if not image["caption"]:
            problems.append(f"{name}: no caption")
        # Sharp on a high-density screen: SVG, or a bitmap of at least twice the width shown.
        if not image["src"].lower().endswith(".svg") and image["natural"] < 1.9 * image["shown"]:
            problems.append(
                f"{name}: {image['natural']}px wide, shown at {image['shown']:.0f}px (less than 2×: soft on a "
                "high-density screen; use figures.use_book_style())"
            )
    return problems


def _title_problems(title: str, book_title: str, sidebar: str) -> list[str]:
    problems = []
    parts = [part.strip() for part in re.split(r"\s+[—–|-]\s+", title)]
    if len(parts) != len(set(parts)):
        problems.append(f"the <title> repeats itself: {title!r}")
    if sidebar and sidebar.count(book_title) != 1:
        problems.append(f"the sidebar names the book {sidebar.count(book_title)} times, not once")
    return problems


def _display_problems(displays: list[dict], screen: str) -> list[str]:
    problems = []
    for display in displays:
        where = f"{display['width']}px display in a {display['column']}px column: {display['tex']!r}"
        if display["outside"]:
            problems.append(f"sticks out of the text column: {where}")
        elif display["hidden"] > 1 and screen == "laptop":
            problems.append(f"{display['hidden']}px of it do not fit (break it with aligned): {where}")
        elif display["hidden"] > 1 and not display["scrolls"]:
            problems.append(f"{display['hidden']}px of it are cut off: {where}")
    return problems


def _book_title() -> str:
    text = (SITE / "chapters" / "index.html").read_text(encoding="utf-8") if (SITE / "chapters").is_dir() else ""
    match = re.search(r"<title>(.*?)</title>", text, flags=re.DOTALL)
    return match.group(1).split(" \u2014 ")[0].replace("&#8212;", "\u2014").strip() if match else ""


@pytest.mark.parametrize("screen", list(SCREENS))
@pytest.mark.parametrize("path", _site_pages())
def test_page_on_screen(path: str, screen: str, open_site) -> None:
    site_url, visit = open_site()
    page = visit.page
    page.set_viewport_size(SCREENS[screen])
    visit.open(site_url, path)
    math_problems = _check_math(page)
    assert not math_problems, f"{path}: math does not render:\n  " + "\n  ".join(math_problems)
    page.wait_for_load_state("networkidle")
    problems: list[str] = []

    # Text and equations folded away in dropdowns (<details>) count too: open them
    # for these two checks, then fold them again.
    opened = page.evaluate(_OPEN_DETAILS)
    problems += [f"raw TeX or a $ in the text: {found}" for found in page.evaluate(_RAW_TEX_IN_VISIBLE_TEXT)]
    problems += _display_problems(page.evaluate(_DISPLAYS), screen)
    page.evaluate(_CLOSE_DETAILS, opened)
    outputs = page.evaluate(_OUTPUTS)
    problems += [f"printed output cut at the column's edge: {cut}" for cut in outputs["cut"]]
    problems += [f"a cell's printed output is split into {split}" for split in outputs["split"]]
    problems += [f"an exercise's solution is on screen: {text!r}" for text in page.evaluate(_HIDDEN_SOLUTIONS)]
    if screen == "phone":
        width = page.evaluate(_PAGE_WIDTH)
        if width["excess"] > 0:
            problems.append(
                f"the page is {width['excess']}px wider than the screen; sticking out:\n    "
                + "\n    ".join(width["culprits"])
            )
    if screen == "laptop":
        boxes = page.evaluate(_SEARCH_BOXES)
        if len(boxes) != 1:
            problems.append(f"{len(boxes)} search boxes on screen, not one: {boxes}")
        chrome = page.evaluate(_CHROME)
        problems += _title_problems(chrome["title"], _book_title(), chrome["sidebar"])
        if not chrome["icon"]:
            problems.append("no favicon (<link rel=icon>)")
        if chrome["footer"].count("bnbackprop authors") != 1 or "Copyright" in chrome["footer"]:
            problems.append(f"the footer should name the authors once, with no boilerplate: {chrome['footer']!r}")
        if path.startswith("chapters/"):
            problems += _image_problems(page.evaluate(_IMAGES))

    assert not problems, f"{path} at {SCREENS[screen]['width']}px:\n  " + "\n  ".join(problems)


# The sidebar (☰) and contents toggles: the panel each one should put on screen.
TOGGLES = {
    ".primary-toggle": ["pst-primary-sidebar-modal", "pst-primary-sidebar"],
    ".secondary-toggle": ["pst-secondary-sidebar-modal", "pst-secondary-sidebar"],
}
TOGGLE_PAGES = ["chapters/index.html", "chapters/notation.html"]

_PANEL_ON_SCREEN = """(ids) => ids.some(id => {
  const e = document.getElementById(id);
  if (!e || (e.tagName === 'DIALOG' && !e.open) || !e.checkVisibility()) return false;
  const r = e.getBoundingClientRect();
  const links = Array.from(e.querySelectorAll('a')).filter(a => a.checkVisibility()).length;
  return links > 0 && r.width > 100 && r.height > 100 && r.left > -2 && r.right < window.innerWidth + 2
         && r.top < window.innerHeight && r.bottom > 0;
})"""


@pytest.mark.parametrize("path", TOGGLE_PAGES)
def test_sidebar_toggles_work(path: str, open_site) -> None:
    site_url, visit = open_site()
    page = visit.page
    problems = []
    for screen in ("tablet", "phone"):
        page.set_viewport_size(SCREENS[screen])
        visit.open(site_url, path)
        for selector, panels in TOGGLES.items():
            toggles = page.locator(f"{selector}:visible")
            if toggles.count() == 0:
                problems.append(f"{screen}: no visible {selector}")
            for index in range(toggles.count()):
                assert not page.evaluate(_PANEL_ON_SCREEN, panels), f"{screen}: {panels[0]} open before any click"
                toggles.nth(index).click()
                try:
                    page.wait_for_function(_PANEL_ON_SCREEN, arg=panels, timeout=3_000)
                except Exception:  # a Playwright timeout: the panel never came
                    problems.append(f"{screen}: clicking visible {selector} #{index + 1} shows no panel")
                page.keyboard.press("Escape")
                page.wait_for_function(
                    "(id) => !document.getElementById(id) || !document.getElementById(id).open", arg=panels[0]
                )
    # At 1366 px the ☰ collapses the sidebar and brings it back.
    page.set_viewport_size(SCREENS["laptop"])
    visit.open(site_url, path)
    sidebar_shown = """() => { const e = document.getElementById('pst-primary-sidebar');
        return !!e && e.checkVisibility() && e.getBoundingClientRect().width > 100
               && e.getBoundingClientRect().right > 100; }"""
    toggle = page.locator(".primary-toggle:visible")
    if toggle.count() != 1:
        problems.append(f"laptop: {toggle.count()} visible ☰ buttons, not one")
    elif not page.evaluate(sidebar_shown):
        problems.append("laptop: the sidebar is not shown")
    else:
        toggle.click()
        page.wait_for_timeout(500)
        if page.evaluate(sidebar_shown):
            problems.append("laptop: the ☰ does not collapse the sidebar")
        page.locator(".primary-toggle:visible").first.click()
        page.wait_for_timeout(500)
        if not page.evaluate(sidebar_shown):
            problems.append("laptop: a second click on the ☰ does not bring the sidebar back")
    assert not problems, f"{path}: sidebar toggles:\n  " + "\n  ".join(problems)


# A page made to fail every check of test_page_on_screen, opened at 390 px.
_BAD_PAGE = """<!DOCTYPE html><html><head><title>Book — Book</title></head><body>
<main><article class="bd-article" style="width: 380px"><section class="tex2jax_ignore mathjax_ignore">
  <p id="raw">The mean is $\\mu$ and \\sigma is raw; W_{t-1} is pseudo-TeX.</p><p><code>$ok$ \\ok</code></p>
  <mjx-container display="true" style="display: block; width: 300px; overflow: hidden">
    <span style="display: inline-block; width: 500px">wide</span></mjx-container>
  <div class="cell_output"><div class="output stream"><pre style="overflow: auto">a</pre></div>
    <div class="output stream"><pre style="overflow: auto; width: 100px">LONG_LINE</pre></div></div>
  <div class="cell tag_hide-cell"><div class="cell_output"><pre>the answer</pre></div></div>
  <img alt="../_images/0123456789abcdef0123.png" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
  <div style="width: 700px">wide paragraph</div>
</section></article></main></body></html>""".replace("LONG_LINE", "x" * 200)


def test_screen_checks_can_fail(open_site) -> None:
    _, visit = open_site()
    page = visit.page
    page.set_viewport_size(SCREENS["phone"])
    page.set_content(_BAD_PAGE)
    raw = page.evaluate(_RAW_TEX_IN_VISIBLE_TEXT)
    assert any("$ in" in found for found in raw) and any("\\sigma" in found for found in raw), raw
    assert any(found.startswith("_{") for found in raw), raw
    assert not any("ok" in found for found in raw), f"text in <code> was scanned: {raw}"
    displays = page.evaluate(_DISPLAYS)
    assert len(_display_problems(displays, "tablet")) == 1 and len(_display_problems(displays, "laptop")) == 1
    assert not _display_problems([{**displays[0], "scrolls": True}], "tablet"), "a display that scrolls is not cut"
    assert _display_problems([{**displays[0], "scrolls": True}], "laptop"), "at 1366 px a display must fit"
    outputs = page.evaluate(_OUTPUTS)
    assert len(outputs["cut"]) == 1 and len(outputs["split"]) == 1, outputs
    assert page.evaluate(_HIDDEN_SOLUTIONS) == ["the answer"]
    width = page.evaluate(_PAGE_WIDTH)
    assert width["excess"] > 0 and any("wide paragraph" in c for c in width["culprits"]), width
    image_problems = _image_problems(page.evaluate(_IMAGES))
    assert len(image_problems) == 4, image_problems  # alt text, number, caption, resolution
    assert _title_problems("Book — Book", "Book", "Book\nBook") == [
        "the <title> repeats itself: 'Book — Book'",
        "the sidebar names the book 2 times, not once",
    ]
    assert not _title_problems("1. Notation — Book", "Book", "Book\n1. Notation")
    good_image = {
        "src": "x.png",
        "alt": "Loss against step for three optimizers.",
        "number": "Fig. 1",
        "caption": "c",
        "natural": 1500,
        "shown": 750,
    }
    assert not _image_problems([good_image])
    assert _image_problems([{**good_image, "natural": 1000}]), "a 1.33× bitmap is soft"
