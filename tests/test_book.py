"""The course's website (``mamba-edu book``), opened page by page in Debian's Chromium, offline.

Run by ``make test-book`` after ``make test-lessons``: the pages are built from the lessons' nbval
runs saved in ``build/executed`` (a lesson without an up-to-date run is executed here, so this file
also works on its own, only slower). Every page must load with no console error and no request
leaving the site, show its math rendered (no raw ``$…$`` in the text, no TeX error), load every
image, resolve every internal link, carry no solution code, and show the self-check messages the
lesson printed. The landing page must link every lesson. Screenshots of three pages go to
``artifacts/book/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from mamba_edu import book, course

pytestmark = [pytest.mark.book, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "book"
CHROMIUM = Path(os.environ.get("MAMBA_EDU_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
RAW_MATH = re.compile(r"\$[^$\n]{1,200}\$")
LESSONS = course.lessons()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    pages = book.build_book(out, executed_dir=ROOT / book.EXECUTED_DIR, log=lambda _: None)
    return out, pages


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install-browser` installs Debian's Chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        # offline: the site must not need the network at all
        context = chromium.new_context(offline=True, viewport={"width": 1300, "height": 900})
        try:
            yield context
        finally:
            context.close()
            chromium.close()


def _open(context, path: Path):
    """Open ``path``; return the tab, its console errors and every request that left the site."""
    tab = context.new_page()
    errors, outside = [], []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))

    def route(r):
        if r.request.url.startswith("file://") or r.request.url.startswith("data:"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    tab.route("**/*", route)
    tab.goto(path.as_uri(), wait_until="load")
    return tab, errors, outside


def _typeset(tab) -> None:
    """Wait until MathJax has finished with the page (its queue runs our callback last)."""
    tab.evaluate(
        "() => new Promise(done => MathJax.Hub.Queue(() => { window.__typeset = true; done(); }))"
    )
    tab.wait_for_function("window.__typeset === true", timeout=60_000)


def _internal_links_resolve(tab, path: Path) -> list[str]:
    broken = []
    ids = set(tab.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
    for href in tab.eval_on_selector_all("a[href]", "els => els.map(a => a.getAttribute('href'))"):
        parts = urlsplit(href)
        if parts.scheme in ("http", "https", "mailto"):
            continue  # citations: links out, never loaded by the page
        if parts.path:
            target = (path.parent / unquote(parts.path)).resolve()
            if not target.exists():
                broken.append(href)
        elif parts.fragment and not {parts.fragment, unquote(parts.fragment)} & ids:
            # as a browser resolves it: the fragment as written, then percent-decoded (nbconvert
            # writes the ids of headings with non-ASCII characters percent-encoded)
            broken.append(href)
    return broken


def test_the_landing_page_links_every_lesson(site, browser):
    out, pages = site
    tab, errors, outside = _open(browser, out / "index.html")
    try:
        hrefs = set(
            tab.eval_on_selector_all("main a[href]", "els => els.map(a => a.getAttribute('href'))")
        )
        assert {f"{lesson.name}.html" for lesson in LESSONS} <= hrefs
        assert tab.eval_on_selector("img", "img => img.complete && img.naturalWidth > 0")
        assert not errors, f"console errors on the landing page: {errors}"
        assert not outside, f"the landing page asked the network for {outside}"
        assert not _internal_links_resolve(tab, out / "index.html")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / "index.png"))
    finally:
        tab.close()


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.name for lesson in LESSONS])
def test_a_lesson_page_reads_offline(site, browser, lesson):
    out, _ = site
    path = out / f"{lesson.name}.html"
    tab, errors, outside = _open(browser, path)
    try:
        _typeset(tab)
        assert not errors, f"console errors on {path.name}: {errors}"
        assert not outside, f"{path.name} asked the network for {outside}"
        prose = "\n".join(
            tab.eval_on_selector_all(".jp-RenderedMarkdown", "els => els.map(e => e.innerText)")
        )
        raw = RAW_MATH.findall(prose)
        assert not raw, f"math left as raw TeX on {path.name}: {raw[:5]}"
        rendered = tab.eval_on_selector_all(".MathJax, .MathJax_Display", "els => els.length")
        assert rendered > 0, f"no rendered math on {path.name}"
        failed_tex = tab.eval_on_selector_all(
            ".noError, .merror", "els => els.map(e => e.innerText)"
        )
        assert not failed_tex, f"TeX MathJax could not render on {path.name}: {failed_tex[:3]}"
        images = tab.eval_on_selector_all(
            "img", "els => els.map(i => [i.complete && i.naturalWidth > 0, i.alt])"
        )
        assert images and all(ok for ok, _ in images), f"an image failed to load on {path.name}"
        broken = _internal_links_resolve(tab, path)
        assert not broken, f"links on {path.name} that lead nowhere: {broken}"
        nav = tab.eval_on_selector_all(
            "nav.book-nav a", "els => els.map(a => a.getAttribute('href'))"
        )
        assert "index.html" in nav

        text = tab.inner_text("body")
        exercises = course.exercises(lesson)
        if exercises:
            assert "✅" in text, f"{path.name} shows no self-check message"
        student_code = "\n".join(
            c.source for c in book.page_notebook(_instructor(lesson)).cells if c.cell_type == "code"
        )
        for ex in exercises:
            for line in ex.solution_lines:
                if len(line.strip()) > 12 and line.strip() not in student_code:
                    assert line.strip() not in text, f"{path.name} shows solution code: {line!r}"
        if lesson.number in {"00", "03", "06"}:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(ARTIFACTS / f"{lesson.name}.png"))
    finally:
        tab.close()


def _instructor(lesson):
    return course.build_notebook(lesson)


def test_a_widget_is_shown_as_its_picture_with_a_note(site):
    out, _ = site
    html = (out / "06_selectivity.html").read_text(encoding="utf-8")
    assert book.WIDGET_NOTE.split(":")[0] in html
    assert "widget-view+json" not in html


def test_a_stale_run_is_not_reused(tmp_path):
    lesson = LESSONS[0]
    stale = tmp_path / f"{lesson.name}.ipynb"
    nb = course.build_notebook(lesson)
    nb.metadata["mamba_edu"] = {"source_sha256": "0" * 64}
    import nbformat

    nbformat.write(nb, stale)
    with pytest.raises(book.BookError, match="no up-to-date executed run"):
        book.executed_notebook(lesson, tmp_path, execute=False)
