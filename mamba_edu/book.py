"""The course as a static website: ``mamba-edu book`` (``make book``) → ``build/book/``.

What a page shows, and why: the **student** version of each lesson (exercise cells hold the stub a
learner gets, hidden tests are gone) with the **outputs of the instructor's run** (every figure,
measurement and self-check message, as produced with the solutions in place). An instructor can
publish the site and still assign the exercises: no solution is on it; a reader still sees every
result the lesson computes. Cells correspond one to one (``course.student_notebook`` keeps the cell
list), so outputs are carried over by position.

Where the outputs come from: ``make test`` runs every lesson under nbval, and the repository's
``conftest.py`` saves each fully passing run to ``build/executed/`` (``MAMBA_EDU_EXECUTED``), stamped
with the SHA-256 of the notebook it ran. A lesson whose saved run matches the current source is not
executed again; any other lesson is executed here with nbclient, the same way (a fresh kernel, top
to bottom, in the folder of the built notebooks).

Offline: math is rendered in the browser by the MathJax 2 copy shipped in the
``jupyter-server-mathjax`` package, copied next to the pages; images are embedded as data URIs;
no page refers to anything outside the site. Widgets are shown as their current picture (every
course widget's output carries a PNG beside its live view) with a line saying that moving them
needs JupyterLab.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mamba_edu import course

__all__ = ["BookError", "Page", "build_book", "executed_notebook", "EXECUTED_DIR", "BOOK_DIR"]

BOOK_DIR = Path("build/book")
EXECUTED_DIR = Path("build/executed")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
CELL_TIMEOUT = 300  # seconds per cell, as `make test-lessons`
WIDGET_NOTE = (
    "Interactive widget: this is the picture it shows for its starting values. Moving its "
    "controls needs the lesson running in JupyterLab (see “Run it yourself”)."
)
LIVE_WIDGET_NOTE = (
    "A live widget (a progress bar or controls) appears here when the lesson runs in JupyterLab."
)


class BookError(course.CourseError):
    exit_code = 1


@dataclass
class Page:
    lesson: course.Lesson | None  # None for the landing page
    path: Path
    executed: str  # "reused" (nbval's run), "executed" (here), or "" for the landing page


# ----------------------------------------------------------------------------------------------
# Executed notebooks
# ----------------------------------------------------------------------------------------------


def notebook_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run(nb: nbformat.NotebookNode, workdir: Path) -> None:
    # imported here: nbclient (and a kernel) are needed only when a lesson must be executed
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()


def executed_notebook(
    lesson: course.Lesson, executed_dir: Path = EXECUTED_DIR, *, execute: bool = True
) -> tuple[nbformat.NotebookNode, str]:
    """The instructor notebook of ``lesson`` with outputs, and how it was obtained.

    Reuses ``executed_dir/NN_slug.ipynb`` when its stamp matches the current source; otherwise runs
    the lesson (unless ``execute`` is false: then a missing or stale run is a :class:`BookError`).
    """
    data = course._notebook_bytes(course.build_notebook(lesson))
    sha = notebook_sha(data)
    saved = Path(executed_dir) / f"{lesson.name}.ipynb"
    if saved.exists():
        nb = nbformat.read(saved, as_version=4)
        if nb.metadata.get("mamba_edu", {}).get("source_sha256") == sha:
            return nb, "reused"
    if not execute:
        raise BookError(
            f"no up-to-date executed run of lesson {lesson.number} in {executed_dir} "
            f"(expected {saved.name} stamped with the current source): run `make test-lessons` "
            f"or build without --no-execute"
        )
    workdir = Path(executed_dir)
    workdir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    _run(nb, workdir)
    nb.metadata.setdefault("mamba_edu", {})["source_sha256"] = sha
    nb.metadata["mamba_edu"]["executed_by"] = "mamba-edu book (nbclient)"
    nbformat.write(nb, saved)
    return nb, "executed"


def _static_outputs(outputs: list) -> list:
    """Outputs a static page can show: a widget becomes its picture (or a note)."""
    shown = []
    for out in outputs:
        data = out.get("data", {})
        if WIDGET_MIME not in data:
            shown.append(out)
            continue
        if "image/png" in data:
            picture = nbformat.from_dict(
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {"image/png": data["image/png"], "text/plain": "widget picture"},
                }
            )
            shown.append(picture)
            note = WIDGET_NOTE
        else:
            note = LIVE_WIDGET_NOTE
        shown.append(
            nbformat.from_dict(
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {
                        "text/html": f'<p class="book-widget-note">{html.escape(note)}</p>',
                        "text/plain": note,
                    },
                }
            )
        )
    return shown


def page_notebook(executed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version of an executed instructor notebook, carrying its outputs."""
    student = course.student_notebook(executed)
    if len(student.cells) != len(executed.cells):
        raise BookError("the student version does not have the instructor version's cells")
    for mine, ran in zip(student.cells, executed.cells, strict=True):
        if mine.cell_type != ran.cell_type:
            raise BookError("the student version's cells are not in the instructor's order")
        if mine.cell_type == "code":
            mine.outputs = _static_outputs(ran.get("outputs", []))
            mine.execution_count = ran.get("execution_count")
        elif mine.cell_type == "markdown":
            mine.source = _letters_for_bundled_fonts(mine.source)
    return student


# The bundled MathJax (pip's jupyter-server-mathjax) ships only the STIX web fonts; \mathbb and
# \mathcal make MathJax fetch its TeX fonts, which are absent (a failed load in the console).
# STIX has these letters as plain characters: ℝ for \mathbb{R}, 𝒩 for \mathcal N.
_SCRIPT_EXCEPTIONS = {
    "B": "ℬ",
    "E": "ℰ",
    "F": "ℱ",
    "H": "ℋ",
    "I": "ℐ",
    "L": "ℒ",
    "M": "ℳ",
    "R": "ℛ",
}
_DOUBLE_EXCEPTIONS = {"C": "ℂ", "H": "ℍ", "N": "ℕ", "P": "ℙ", "Q": "ℚ", "R": "ℝ", "Z": "ℤ"}
_FANCY = re.compile(r"\\(mathbb|mathcal)\s*(?:\{([A-Z])\}|([A-Z]))")


def _fancy_letter(match: re.Match) -> str:
    kind, letter = match.group(1), match.group(2) or match.group(3)
    if kind == "mathbb":
        return _DOUBLE_EXCEPTIONS.get(letter) or chr(0x1D538 + ord(letter) - ord("A"))
    return _SCRIPT_EXCEPTIONS.get(letter) or chr(0x1D49C + ord(letter) - ord("A"))


def _letters_for_bundled_fonts(markdown: str) -> str:
    return _FANCY.sub(_fancy_letter, markdown)


# ----------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------

_CSS = """
.book-nav{display:flex;justify-content:space-between;gap:1em;padding:.6em 1em;
  background:#f3f5f8;border-bottom:1px solid #d0d7de;font:15px sans-serif}
.book-nav a{text-decoration:none}
.book-run{margin:1.2em auto;max-width:60em;padding:.8em 1.2em;border:1px solid #9ab;
  border-radius:6px;background:#f7fbff;font:15px sans-serif}
.book-run code{background:#eef;padding:0 .3em}
.book-widget-note{font-style:italic;color:#555}
.book-landing{max-width:60em;margin:1em auto;font:16px sans-serif;line-height:1.45}
.book-landing table{border-collapse:collapse}
.book-landing td,.book-landing th{border:1px solid #ccd;padding:.3em .6em;text-align:left}
.book-landing img{max-width:100%}
"""


def _run_box() -> str:
    return (
        '<div class="book-run"><strong>Run it yourself.</strong> This page is a picture of the '
        "lesson. To run it, move the widgets and do the exercises with self-checks: clone the "
        "course, then <code>make lab</code> (sets everything up the first time and opens "
        "JupyterLab on your workspace); <code>make test</code> runs every test. On a JupyterHub "
        "or Binder, see the instructor guide (<code>docs/INSTRUCTORS.md</code>).</div>"
    )


def _nav(pages: list[Page], index: int | None) -> str:
    home = '<a href="index.html">Mamba from scratch — all lessons</a>'
    if index is None:
        return f'<nav class="book-nav">{home}</nav>'
    prev_link = next_link = "<span></span>"
    if index > 0:
        p = pages[index - 1]
        prev_link = f'<a rel="prev" href="{p.path.name}">← {p.lesson.number} {p.lesson.title}</a>'
    if index + 1 < len(pages):
        p = pages[index + 1]
        next_link = f'<a rel="next" href="{p.path.name}">{p.lesson.number} {p.lesson.title} →</a>'
    return f'<nav class="book-nav">{prev_link}{home}{next_link}</nav>'


def _exporter():
    # imported here: nbconvert is needed only by this command
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.mathjax_url = MATHJAX_URL
    # nothing may come from outside the site: these would be CDN addresses
    exporter.require_js_url = ""
    exporter.jquery_url = ""
    exporter.mermaid_js_url = ""
    exporter.widget_renderer_url = ""
    exporter.jupyter_widgets_base_url = ""
    exporter.html_manager_semver_range = ""
    return exporter


_EXTERNAL = re.compile(
    r"""<(?:script|link)\b[^>]*\b(?:src|href)=["'](?:https?:)?//[^"']*["'][^>]*>"""
)
_MERMAID = re.compile(
    r'<script type="module">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*</script>', re.S
)
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
# MathJax 2 (HTML-CSS output) with the STIX web fonts shipped beside the pages. Its font probe
# "MathJax_Blank" is loaded from `about:blank` by default, which a browser reports as a failed,
# cross-origin font load: a local() source that does not exist gives the same fallback quietly.
_MATHJAX_SETUP = (
    '<script type="text/x-mathjax-config">MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], '
    'preferredFont: null, webFont: "STIX-Web", imageFont: null, styles: {"@font-face": '
    '{"font-family": "MathJax_Blank", src: "local(\'MathJax Blank, none\')"}}}});</script>\n'
)


def _finish(body: str, nav: str, title: str) -> str:
    """Site chrome around nbconvert's page; drop anything that would load from the network."""
    body = _EXTERNAL.sub("", body)
    body = body.replace('<script src=""></script>', "")  # require.js, unused by static pages
    body = _MERMAID.sub("", body)  # the loader of mermaid diagrams (from a CDN); lessons have none
    body = re.sub(r"<title>.*?</title>", f"<title>{html.escape(title)}</title>", body, count=1)
    body = body.replace(
        f'<script src="{MATHJAX_URL}"', f'{_MATHJAX_SETUP}<script src="{MATHJAX_URL}"', 1
    )
    icon = '<link rel="icon" href="data:,">'  # no favicon request
    body = body.replace("</head>", f"{icon}<style>{_CSS}</style>\n</head>", 1)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav + _run_box(), body, count=1)
    return body.replace("</body>", nav + "</body>", 1)


def _landing(pages: list[Page], roadmap_png: str) -> str:
    rows = []
    available = {p.lesson.number: p for p in pages}
    for stage in course.ROADMAP:
        page = available.get(stage.number)
        title = html.escape(stage.title)
        cell = f'<a href="{page.path.name}">{title}</a>' if page else f"{title} (coming)"
        rows.append(
            f"<tr><td>{stage.number}</td><td>{cell}</td><td>{html.escape(stage.idea)}</td></tr>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<title>Mamba from scratch</title><link rel="icon" href="data:,">'
        f"<style>{_CSS}</style></head><body>{_nav(pages, None)}"
        '<main class="book-landing"><h1>Mamba from scratch</h1>'
        "<p>An interactive course from a plain recurrent network to Mamba: every idea written in "
        "NumPy in front of you, measured on the spot, and checked against the official "
        "<code>mamba_ssm</code> code. These pages are the lessons as they ran, with the exercise "
        "cells as a learner receives them.</p>"
        f'<img alt="The course roadmap: one box per lesson" src="data:image/png;base64,{roadmap_png}">'
        "<h2>Lesson map</h2><table><thead><tr><th>#</th><th>lesson</th><th>the idea</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        f"{_run_box()}</main></body></html>\n"
    )


def _roadmap_png() -> str:
    # imported here: matplotlib is only needed for the landing page's figure
    from mamba_edu import plots

    fig = plots.roadmap(highlight=None)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _copy_mathjax(out: Path) -> None:
    # imported here: the package that ships MathJax is needed only to build the site
    import jupyter_server_mathjax

    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (src / "MathJax.js").exists():
        raise BookError(f"MathJax is missing from {src}: reinstall jupyter-server-mathjax")
    dest = out / "mathjax"
    if not dest.exists():
        shutil.copytree(src, dest)


def build_book(
    out: str | os.PathLike = BOOK_DIR,
    specs: list[str] | None = None,
    *,
    executed_dir: str | os.PathLike = EXECUTED_DIR,
    execute: bool = True,
    log=print,
) -> list[Page]:
    """Build the site into ``out``: ``index.html`` and one page per lesson. Returns the pages."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    course._check_writable(out, "book folder")
    _copy_mathjax(out)
    exporter = _exporter()
    pages = [Page(lesson, out / f"{lesson.name}.html", "") for lesson in course.find_lessons(specs)]
    for i, page in enumerate(pages):
        executed, how = executed_notebook(page.lesson, Path(executed_dir), execute=execute)
        page.executed = how
        body, _ = exporter.from_notebook_node(page_notebook(executed))
        title = f"{page.lesson.number} {page.lesson.title} — Mamba from scratch"
        page.path.write_text(_finish(body, _nav(pages, i), title), encoding="utf-8")
        log(f"  {page.path} ({how})")
    index = Page(None, out / "index.html", "")
    index.path.write_text(_landing(pages, _roadmap_png()), encoding="utf-8")
    log(f"  {index.path}")
    return [index, *pages]
