"""The built HTML book in a real browser: headless Chromium opens it from disk, offline.

Run by ``make test`` after ``make book`` (marker ``browser``); alone::

    make book && .venv/bin/python -m pytest -m browser tests/test_browser.py

Every page of ``_build/html`` is visited once with the network blocked. A page fails on
any JavaScript error or failed load, a broken image, or a resource that is not a local
file. Chapter pages must show figures and their Colab button; every explorer (a Plotly
figure, :mod:`resnet_lab.book.explorer`) must redraw when any of its drop-downs changes and
hide a curve when its legend entry is clicked; at phone width (390 px) its labels must
stay >= 10 px and its drop-downs >= 32 px tall; search must find pages. At 1280 px and as
a 390 px phone, every page must fit the screen's width and open its table of contents and
outline when their buttons are tapped; as a phone (4x slower CPU, nothing cached) no page
may wait for a large script before painting, and a chapter may load at most 3 MB before
the reader scrolls. Full-page screenshots of every chapter at 1280 px and 390 px, and
``pages.json`` (per page: first contentful paint on the phone, bytes, widths), are saved
in ``_build/screenshots/``. ``RESNET_LAB_HTML`` points the test at another build folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml
from offline_chromium import offline_chromium

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("RESNET_LAB_HTML", ROOT / "_build" / "html")).resolve()
SCREENSHOTS = HTML.parent / "screenshots"
CHAPTER = re.compile(r"0\d_\w+")
# Pages whose kernel-free explorers the issue asks for, and the control each must have.
EXPLORER_PAGES = {"01_vanishing_gradients": "activation", "06_cifar_resnets": "show"}
SCREEN_WIDTH, PHONE_WIDTH, MAX_SCREEN_HEIGHT = 1280, 390, 12000
MIN_TEXT_PX, MIN_CONTROL_PX = 10, 32
# A phone: 390 x 844 CSS px, and a CPU 4x slower than this machine's (DevTools' profile).
PHONE = {"width": PHONE_WIDTH, "height": 844, "deviceScaleFactor": 1, "mobile": True}
PHONE_CPU_SLOWDOWN = 4
CHAPTER_BYTES = 3_000_000  # what a chapter may load before the reader scrolls
# A script in <head> this big must not hold up the first paint (plotly.js, 4.8 MB, used to;
# the theme's search index, 0.1 MB and growing with the book, still does on every page).
BLOCKING_SCRIPT_BYTES = 500_000
REDIRECT = re.compile(r"""http-equiv=["']?refresh["']?\s+content=["']\d+;\s*url=([^"'>]+)""", re.I)
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

# Figures a reader sees on a page: notebook output images and explorer charts.
FIGURES_JS = """
const article = document.querySelector('article') || document.body;
return Array.from(article.querySelectorAll('.cell_output img, figure img, .rl-explorer .main-svg'))
  .filter(e => !e.closest('.copybtn')).length;
"""
# Make lazy images load now, then report images that are not loaded or have no pixels.
IMAGES_JS = """
const imgs = Array.from(document.images);
imgs.forEach(i => { if (i.loading === 'lazy') { i.loading = 'eager'; } });
return imgs.map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth]);
"""


def _page_name(path: Path) -> str:
    return str(path.relative_to(HTML).with_suffix("")).replace(os.sep, "/")


def _pages() -> list[Path]:
    skip = {"_static", "_sources", "_images", "_screenshots"}
    return sorted(p for p in HTML.rglob("*.html") if not skip & set(p.relative_to(HTML).parts[:-1]))


def _chapter(path: Path) -> bool:
    return CHAPTER.fullmatch(path.stem) is not None and path.parent.name == "book"


@pytest.fixture(scope="module")
def driver():
    if not (HTML / "index.html").exists():
        pytest.fail(
            f"no built book in {HTML}: run `make book` first (the browser test checks the "
            "built site, and is not skipped so that a missing build cannot pass CI)",
            pytrace=False,
        )
    with offline_chromium(SCREEN_WIDTH, performance_log=True) as chrome:
        chrome.set_page_load_timeout(30)
        # Requests to the web are also blocked outright, so one shows up as a failed load.
        chrome.execute_cdp_cmd("Network.enable", {})
        chrome.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
        yield chrome


def _errors(chrome) -> list[str]:
    return [e["message"] for e in chrome.get_log("browser") if e["level"] == "SEVERE"]


def _open(chrome, url: str) -> None:
    chrome.get_log("browser")  # start each page with empty logs
    chrome.get_log("performance")
    chrome.get(url)


def _requests(chrome) -> list[str]:
    """Every URL the page requested since it was opened (DevTools' network log)."""
    urls = []
    for entry in chrome.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _bytes(urls: list[str]) -> int:
    """What the requested files weigh on disk (each file once; inline data is in its page)."""
    files = {Path(unquote(urlparse(u).path)) for u in urls if u.startswith("file:")}
    return sum(f.stat().st_size for f in files if f.is_file())


def _wait_explorers(chrome, timeout: float = 20.0) -> None:
    """Scroll every explorer into view (plotly.js loads when one nears the screen); wait."""
    roots = chrome.find_elements("css selector", "[data-explorer]")
    for root in roots:
        chrome.execute_script("arguments[0].scrollIntoView({block: 'center'});", root)
    deadline = time.monotonic() + timeout
    while any(r.get_attribute("data-ready") != "1" for r in roots):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    chrome.execute_script("window.scrollTo(0, 0);")


# The sidebars: a visible button toggles each; a narrow screen opens it as a dialog.
SIDEBAR_JS = """
const [which, wide] = arguments;
const button = Array.from(document.querySelectorAll('.' + which + '-toggle'))
  .find(b => b.offsetParent !== null);
const sidebar = document.getElementById('pst-' + which + '-sidebar');
const dialog = document.getElementById('pst-' + which + '-sidebar-modal');
const shown = () => !!sidebar && sidebar.offsetWidth > 0 && sidebar.childElementCount > 0
  && !sidebar.classList.contains('pst-sidebar-hidden');  // the book theme's collapsed sidebar
if (!button) { return shown() ? 'always shown' : 'no button'; }
const before = shown();
button.click();
let result;
if (dialog && dialog.open) { result = 'opens'; dialog.close(); }
else if (wide && before && !shown()) { result = 'collapses'; button.click(); }
else { result = 'nothing happens'; }
return result;
"""
FCP_JS = """
const paint = performance.getEntriesByName('first-contentful-paint')[0];
return paint ? paint.startTime : null;
"""
WIDTH_JS = "return [document.scrollingElement.scrollWidth, window.innerWidth];"


def _wait_images(chrome, timeout: float = 5.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        images = chrome.execute_script(IMAGES_JS)
        if all(complete for _, complete, _ in images) or time.monotonic() > deadline:
            return images
        time.sleep(0.1)


# At phone width: the smallest text in each explorer's figure, its drop-downs' heights,
# and whether the figure is wider than the screen.
PHONE_JS = """
return Array.from(document.querySelectorAll('[data-explorer]')).map(root => {
  const texts = Array.from(root.querySelectorAll('.main-svg text'))
    .filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0);
  const sizes = texts.map(t => parseFloat(getComputedStyle(t).fontSize));
  const selects = Array.from(root.querySelectorAll('select'));
  const plot = root.querySelector('.main-svg');
  return {min_text: sizes.length ? Math.min(...sizes) : 0,
          controls: selects.map(s => s.getBoundingClientRect().height),
          right: plot ? plot.getBoundingClientRect().right : 0, width: window.innerWidth};
});
"""


def _page_height(chrome) -> int:
    return int(
        chrome.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight);"
        )
    )


def _screenshot(chrome, path: Path) -> None:
    chrome.set_window_size(SCREEN_WIDTH, min(max(_page_height(chrome), 600), MAX_SCREEN_HEIGHT))
    path.parent.mkdir(parents=True, exist_ok=True)
    chrome.save_screenshot(str(path))
    chrome.set_window_size(SCREEN_WIDTH, 900)


def _phone(chrome, url: str, path: Path | None) -> dict:
    """Open ``url`` on a phone, cold and with a slow CPU: paint time, bytes, width, sidebars;
    then at full speed the explorers' metrics and, for chapters, a full-page screenshot."""
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    chrome.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    chrome.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": PHONE_CPU_SLOWDOWN})
    try:
        _open(chrome, url)
        time.sleep(1)  # what loads without the reader scrolling (deferred scripts included)
        found = {"fcp_ms": chrome.execute_script(FCP_JS), "requests": _requests(chrome)}
        chrome.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": 1})
        found["bytes"] = _bytes(found["requests"])
        found["width"] = chrome.execute_script(WIDTH_JS)
        found["menu"] = chrome.execute_script(SIDEBAR_JS, "primary", False)
        found["outline"] = chrome.execute_script(SIDEBAR_JS, "secondary", False)
        _wait_explorers(chrome)
        _wait_images(chrome)
        time.sleep(0.5)  # plotly redraws once the page has its phone layout
        found["explorers"] = chrome.execute_script(PHONE_JS)
        if path is not None:
            height = min(max(_page_height(chrome), 600), MAX_SCREEN_HEIGHT)
            chrome.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride", {**PHONE, "height": height}
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            chrome.save_screenshot(str(path))
    finally:
        chrome.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": 1})
        chrome.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
        chrome.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return found


@pytest.fixture(scope="module")
def site(driver):
    """Visit every page once: errors, images, resources, figures, links; screenshot chapters."""
    pages = _pages()
    assert pages, f"{HTML} holds no pages"
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    report = {}
    for path in pages:
        name = _page_name(path)
        redirect = REDIRECT.search(path.read_text(errors="replace"))
        if redirect:
            # The root index.html only forwards to the landing page: check where to.
            target = (path.parent / redirect.group(1)).resolve()
            assert target.exists(), f"{name} redirects to a missing page {redirect.group(1)}"
            continue
        _open(driver, path.as_uri())
        width = driver.execute_script(WIDTH_JS)
        sidebars = [driver.execute_script(SIDEBAR_JS, w, True) for w in ("primary", "secondary")]
        _wait_explorers(driver)
        images = _wait_images(driver)
        info = {
            "errors": _errors(driver),
            "broken": [src for src, complete, width in images if not complete or width == 0],
            "resources": _requests(driver),
            "width": {SCREEN_WIDTH: width},
            "menu": {SCREEN_WIDTH: sidebars[0]},
            "outline": {SCREEN_WIDTH: sidebars[1]},
            "figures": driver.execute_script(FIGURES_JS),
            "links": driver.execute_script(
                "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);"
            ),
            "explorers": driver.execute_script(
                "return Array.from(document.querySelectorAll('[data-explorer]'))"
                ".map(e => e.getAttribute('data-ready'));"
            ),
        }
        if _chapter(path):
            _screenshot(driver, SCREENSHOTS / f"{path.stem}-{SCREEN_WIDTH}.png")
            info["errors"] += _errors(driver)
        shot = SCREENSHOTS / f"{path.stem}-{PHONE_WIDTH}.png" if _chapter(path) else None
        phone = _phone(driver, path.as_uri(), shot)
        info["errors"] += _errors(driver)
        info["resources"] += phone["requests"]
        info["phone"] = phone["explorers"]
        info["width"][PHONE_WIDTH] = phone["width"]
        info["menu"][PHONE_WIDTH], info["outline"][PHONE_WIDTH] = phone["menu"], phone["outline"]
        info["fcp_ms"], info["bytes"] = phone["fcp_ms"], phone["bytes"]
        report[name] = info
    _record(report)
    return report


def _record(report: dict) -> None:
    """pages.json beside the screenshots: what each page measured (not asserted: timings)."""
    keys = ("fcp_ms", "bytes", "width", "menu", "outline")
    measured = {page: {k: info[k] for k in keys} for page, info in report.items()}
    measured["_profile"] = {
        **PHONE,
        "cpu_slowdown": PHONE_CPU_SLOWDOWN,
        "cache": "disabled",
        "fcp_ms": "first contentful paint on the phone profile, opened from disk",
        "bytes": "files loaded before scrolling on the phone profile, as stored on disk",
    }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "pages.json").write_text(json.dumps(measured, indent=1) + "\n")


def test_no_javascript_errors_or_failed_loads(site):
    bad = [f"{page}: {msg}" for page, info in site.items() for msg in info["errors"]]
    assert not bad, "browser console errors:\n" + "\n".join(bad)


def test_no_broken_images(site):
    bad = [f"{page}: {src}" for page, info in site.items() for src in info["broken"]]
    assert not bad, "images that did not load:\n" + "\n".join(bad)


def test_everything_loads_from_disk(site):
    bad = [
        f"{page}: {url}"
        for page, info in site.items()
        for url in info["resources"]
        if not url.startswith(LOCAL_SCHEMES)
    ]
    assert not bad, "resources loaded from the network (the site must work offline):\n" + "\n".join(
        bad
    )


def test_menu_and_outline_open_on_every_page(site):
    """The table of contents and the page's outline open from their buttons at both widths
    (a laptop's menu button collapses the sidebar instead); pages without an outline have
    no outline button."""
    bad = []
    for page, info in site.items():
        for width in (SCREEN_WIDTH, PHONE_WIDTH):
            menu, outline = info["menu"][width], info["outline"][width]
            wanted = ("collapses",) if width == SCREEN_WIDTH else ("opens",)
            if menu not in wanted:
                bad.append(f"{page} at {width} px: the menu button {menu} (expected {wanted[0]})")
            if outline not in ("opens", "always shown", "no button"):
                bad.append(f"{page} at {width} px: the outline button: {outline}")
    assert not bad, "\n".join(bad)


def test_no_page_is_wider_than_the_screen(site):
    bad = [
        f"{page} at {width} px: {scroll} px wide"
        for page, info in site.items()
        for width, (scroll, inner) in info["width"].items()
        if scroll > inner
    ]
    assert not bad, "pages that scroll sideways (wide content must scroll in its own box):\n" + (
        "\n".join(bad)
    )


def test_chapters_load_at_most_3_mb_before_the_reader_scrolls(site):
    bad = [
        f"{page}: {info['bytes'] / 1e6:.2f} MB"
        for page, info in site.items()
        if CHAPTER.fullmatch(page.split("/")[-1]) and info["bytes"] > CHAPTER_BYTES
    ]
    assert not bad, f"chapters over {CHAPTER_BYTES / 1e6:.0f} MB on a phone:\n" + "\n".join(bad)
    assert all(info["fcp_ms"] for info in site.values()), "a page painted nothing"


def test_no_large_script_holds_up_the_first_paint():
    """What the paint time depends on, checked without timing it: a script in <head> that
    is neither deferred nor async stops the page from painting until it has run."""
    script = re.compile(r"<script\b([^>]*)\bsrc=[\"']([^\"'?#]+)[^>]*>", re.IGNORECASE)
    bad = []
    for path in _pages():
        head = path.read_text(errors="replace").split("</head>")[0]
        for attrs, src in script.findall(head):
            if re.search(r"\b(defer|async)\b|type=[\"']?module", attrs):
                continue
            target = (path.parent / unquote(src)).resolve()
            if target.is_file() and target.stat().st_size > BLOCKING_SCRIPT_BYTES:
                size = target.stat().st_size / 1e6
                bad.append(f"{_page_name(path)}: {src} ({size:.1f} MB)")
    assert not bad, "large scripts that block the first paint:\n" + "\n".join(bad)


def test_no_remote_resources_in_the_build():
    """Static check of what the browser might load later (scripts, styles, fonts, images)."""
    remote = re.compile(
        r"""<(?:script|img|iframe|source|embed)\b[^>]*\bsrc=["']?https?:"""
        r"""|<link\b[^>]*\brel=["']?(?:stylesheet|preload|modulepreload|icon)["']?[^>]*\bhref=["']?https?:"""
        r"""|<link\b[^>]*\bhref=["']?https?:[^>]*\brel=["']?(?:stylesheet|preload|modulepreload|icon)"""
        r"""|url\(\s*["']?https?:|@import\s+(?:url\()?\s*["']?https?:""",
        re.IGNORECASE,
    )
    if not HTML.exists():
        pytest.fail(f"no built book in {HTML}: run `make book` first", pytrace=False)
    bad = []
    for path in sorted(HTML.rglob("*")):
        if path.suffix in (".html", ".css") and "_sources" not in path.parts:
            for match in remote.finditer(path.read_text(errors="replace")):
                bad.append(f"{path.relative_to(HTML)}: {match.group(0)[:120]}")
    assert not bad, "the build refers to resources on the network:\n" + "\n".join(bad)


def test_chapter_pages_show_figures(site):
    chapters = {page: info for page, info in site.items() if CHAPTER.fullmatch(page.split("/")[-1])}
    assert chapters, "no chapter pages (book/0N_*.html) in the build"
    bad = [page for page, info in chapters.items() if info["figures"] < 1]
    assert not bad, f"chapter pages without any figure: {bad}"
    missing = [
        f"{p}-{w}"
        for p in chapters
        for w in (SCREEN_WIDTH, PHONE_WIDTH)
        if not (SCREENSHOTS / f"{p.split('/')[-1]}-{w}.png").exists()
    ]
    assert not missing, f"no screenshot saved for {missing}"


def test_explorers_are_readable_at_phone_width(site):
    bad = []
    for page, info in site.items():
        for i, explorer in enumerate(info.get("phone", [])):
            where = f"{page} explorer {i + 1}"
            if explorer["min_text"] < MIN_TEXT_PX:
                bad.append(f"{where}: text {explorer['min_text']} px (< {MIN_TEXT_PX})")
            if any(h < MIN_CONTROL_PX for h in explorer["controls"]):
                bad.append(f"{where}: drop-downs {explorer['controls']} px tall")
            if explorer["right"] > explorer["width"] + 1:
                bad.append(f"{where}: figure {explorer['right']} px wide on a 390 px screen")
    assert not bad, "explorers at 390 px:\n" + "\n".join(bad)


def test_chapter_pages_have_a_colab_button(site):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = urlparse(config["repository"]["url"]).path.strip("/")
    branch = config["repository"].get("branch", "main")
    for page, info in site.items():
        if not CHAPTER.fullmatch(page.split("/")[-1]):
            continue
        expected = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{page}.ipynb"
        colab = [link for link in info["links"] if link.startswith("https://colab.research")]
        assert colab == [expected], f"{page}: Colab launch links {colab}, expected [{expected}]"


def test_explorers_are_initialised(site):
    """The explorers' scripts ran in the static page (myst-nb keeps them)."""
    bad = [page for page, info in site.items() if any(r != "1" for r in info["explorers"])]
    assert not bad, f"explorers whose script did not run: {bad}"
    for page in EXPLORER_PAGES:
        if (HTML / "book" / f"{page}.html").exists():
            assert site[f"book/{page}"]["explorers"], f"book/{page} has no kernel-free explorer"


# The figure's state: the setting shown, and the visible curves (name and drawn path).
CURVES_JS = """
const root = arguments[0], plot = root.querySelector('.js-plotly-plot');
const shown = plot.data.map((t, i) => [t, i]).filter(([t]) => t.visible === true && t.meta !== null);
const paths = Array.from(plot.querySelectorAll('.scatterlayer .trace'))
  .filter(g => g.style.opacity !== '0' && g.querySelector('path.js-line'));
return [root.getAttribute('data-state'), shown.map(([t]) => t.name + ':' + JSON.stringify(t.y)),
        paths.map(g => g.querySelector('path.js-line').getAttribute('d') || '')];
"""


def _curves(chrome, root) -> tuple[str, tuple[str, ...]]:
    state, curves, paths = chrome.execute_script(CURVES_JS, root)
    assert all(paths), "a visible curve has no drawn path"
    return state, tuple(curves)


def _legend_toggles(chrome, root) -> bool:
    """Clicking the first legend entry hides its curve (Plotly: 'legendonly').

    Plotly acts on a legend click only after its double-click delay (300 ms by default), so
    the state is polled rather than read after a fixed sleep."""
    script = (
        "return arguments[0].querySelector('.js-plotly-plot').data"
        ".some(t => t.visible === 'legendonly');"
    )

    def wait_for(hidden: bool) -> bool:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if chrome.execute_script(script, root) == hidden:
                return True
            time.sleep(0.1)
        return False

    item = root.find_element("css selector", ".legend .traces")
    item.click()
    hidden = wait_for(True)
    item.click()
    wait_for(False)
    return hidden


def test_explorers_redraw_when_controls_change(driver, site):
    from selenium.webdriver.support.ui import Select

    checked = set()
    for page, info in site.items():
        if not info["explorers"]:
            continue
        _open(driver, (HTML / f"{page}.html").as_uri())
        _wait_explorers(driver)
        roots = driver.find_elements("css selector", "[data-explorer]")
        controls_seen: set[str] = set()
        for root in roots:
            assert _legend_toggles(driver, root), f"{page}: a legend click hides no curve"
            selects = root.find_elements("css selector", "select[data-control]")
            defaults = [Select(s).first_selected_option.get_attribute("value") for s in selects]
            for select in selects:
                # Vary one control with the others at their defaults (a measured combination).
                for other, value in zip(selects, defaults, strict=True):
                    Select(other).select_by_value(value)
                name = select.get_attribute("data-control")
                controls_seen.add(name.lower())
                options = [o.get_attribute("value") for o in Select(select).options]
                drawn = {}
                for value in options:
                    Select(select).select_by_value(value)
                    state, curves = _curves(driver, root)
                    chosen = "|".join(
                        Select(s).first_selected_option.get_attribute("value") for s in selects
                    )
                    assert state == chosen, (
                        f"{page}: chart shows {state!r} after choosing {chosen!r}"
                    )
                    drawn[value] = curves
                computed = {v: c for v, c in drawn.items() if c}
                assert computed, f"{page}: control {name!r} never shows a curve"
                assert all(all(c) for c in computed.values()), f"{page}: an empty curve"
                if len(options) > 1:
                    assert len(set(drawn.values())) > 1, (
                        f"{page}: changing {name!r} over {options} never changes the curves"
                    )
        assert not _errors(driver), f"{page}: JavaScript errors while using the explorers"
        checked.add(page.split("/")[-1])
        required = EXPLORER_PAGES.get(page.split("/")[-1])
        if required:
            assert any(required in c for c in controls_seen), (
                f"{page}: no explorer has a {required!r} control (controls: {controls_seen})"
            )
    for page in EXPLORER_PAGES:
        if (HTML / "book" / f"{page}.html").exists():
            assert page in checked, f"book/{page}: no explorer was exercised"


def test_search_finds_pages(driver):
    search = HTML / "search.html"
    assert search.exists(), "no search page in the build"
    _open(driver, search.as_uri() + "?q=residual")
    deadline = time.monotonic() + 15
    results = []
    while time.monotonic() < deadline and not results:
        results = driver.find_elements("css selector", "ul.search li a")
        time.sleep(0.2)
    assert results, "searching for 'residual' finds nothing"
    for link in results:
        target = Path(unquote(urlparse(link.get_attribute("href")).path))
        assert target.exists(), f"search result points at a missing page: {target}"
    assert not _errors(driver), "JavaScript errors on the search page"
