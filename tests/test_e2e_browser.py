"""The course in a real browser: JupyterLab driven by Chromium through Playwright.

What a learner sees is checked the way a learner sees it. A JupyterLab server (from this
environment, as ``make lab`` starts it) serves a fresh learner workspace (``mamba-edu workspace``:
the student notebooks, exercises as stubs) on a free loopback port with a random token. Debian's
Chromium (``/usr/bin/chromium``, installed with apt-get when missing; never ``playwright install``)
opens each lesson that has a widget, and lesson 00, and

* runs every cell through the menu (Run → Run All Cells) and waits for the kernel to go idle;
* finds no error output in any cell, on screen or in the saved notebook, and no widget that failed
  to render ("Error displaying widget", a widget shown as plain text because the widget manager is
  missing, an image that did not load);
* finds, under every exercise stub, the self-check's friendly "not implemented yet" message rather
  than a traceback;
* moves the first control of every widget with the keyboard and sees the widget's image change
  (the bytes of its ``<img>``, read back from the page).

Screenshots of each lesson go to ``artifacts/e2e/`` (git-ignored), and one more when a test fails.
The last tests break a widget on purpose, in temporary copies of lesson 00, and check that the same
detection reports each breakage.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from processes import die_with_parent

from mamba_edu import course

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = Path(os.environ.get("MAMBA_EDU_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium keeps trying to reach Google's services, and in
# a closed network those connections are refused; --headless and --no-sandbox let it run as root
# on a machine without a display.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
STUB_MESSAGE = "not implemented yet"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
# The controls of a widget, in document order: slider handles (every ipywidgets slider is a
# noUiSlider), dropdowns, buttons, inputs. A widget without any is display-only (a progress bar).
CONTROLS = ".noUi-handle, select, button, input, textarea"
BROKEN_DIR = "e2e-broken"  # temporary copies of a lesson with a widget broken on purpose


# ----------------------------------------------------------------------------------------------
# Which lessons: lesson 00 and every lesson whose student notebook uses the course's widgets
# ----------------------------------------------------------------------------------------------


def _uses_widgets(nb: nbformat.NotebookNode) -> bool:
    return any(c.cell_type == "code" and "widgets." in c.source for c in nb.cells)


def _lessons_to_drive() -> list[course.Lesson]:
    chosen = []
    for lesson in course.lessons():
        nb = course.student_notebook(course.build_notebook(lesson))
        if lesson.number == "00" or _uses_widgets(nb):
            chosen.append(lesson)
    return chosen


LESSONS = _lessons_to_drive()


def _budget(lesson_number: str) -> float:
    return next((s.budget_s for s in course.ROADMAP if s.number == lesson_number), 180.0)


# ----------------------------------------------------------------------------------------------
# Chromium, JupyterLab, the browser
# ----------------------------------------------------------------------------------------------


def _ensure_chromium() -> Path:
    """Debian's Chromium, installed with apt-get when it is missing (CI starts on a clean machine)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} is missing and there is no apt-get to install Chromium with")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(
            sudo + cmd, env=env, capture_output=True, text=True, timeout=900, check=False
        )
        if done.returncode != 0:
            pytest.fail(
                f"installing Chromium failed ({' '.join(sudo + cmd)}, exit {done.returncode}); "
                f"install it with `apt-get install -y chromium`:\n{done.stderr[-2000:]}"
            )
    if not CHROMIUM.exists():
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} does not exist")
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab server: its URL, token, workspace and REST API."""

    def __init__(self, root: Path, workspace: Path, port: int, token: str, proc, log: Path):
        self.root, self.workspace, self.port, self.token = root, workspace, port, token
        self.proc, self.log = proc, log
        self.url = f"http://127.0.0.1:{port}"
        self.retiring: set[str] = set()  # kernels of finished tests, being shut down

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        req = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def kernels(self) -> list[dict]:
        return self.api("/api/kernels")

    def shutdown_kernels(self, wait: bool = True) -> None:
        """Shut down every running kernel; ``wait=False`` lets the next test start meanwhile."""
        ids = [kernel["id"] for kernel in self.kernels()]
        self.retiring.update(ids)

        def shutdown():
            for kernel_id in ids:
                with contextlib.suppress(OSError):
                    self.api(f"/api/kernels/{kernel_id}", method="DELETE", timeout=30)

        if wait:
            shutdown()
        else:
            threading.Thread(target=shutdown, daemon=True).start()

    def kernels_idle(self) -> bool:
        """At least one kernel, and every kernel not being shut down is idle."""
        states = [k["execution_state"] for k in self.kernels() if k["id"] not in self.retiring]
        return bool(states) and all(state == "idle" for state in states)

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def _lab_settings(settings_dir: Path) -> None:
    """Fresh JupyterLab user settings: no prompt asking to fetch Jupyter news from the internet."""
    target = settings_dir / "@jupyterlab" / "apputils-extension"
    target.mkdir(parents=True, exist_ok=True)
    (target / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """JupyterLab on a free loopback port with a random token, serving a fresh learner workspace."""
    root = tmp_path_factory.mktemp("e2e-lab")
    workspace = root / "workspace"
    made = subprocess.run(
        [str(Path(sys.executable).parent / "mamba-edu"), "workspace", str(workspace)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, f"mamba-edu workspace failed:\n{made.stdout}\n{made.stderr}"
    _lab_settings(root / "lab-settings")
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the kernel gets the backend a learner gets (inline)
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(root / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "lab-workspaces"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
    )
    port, token = _free_port(), secrets.token_hex(16)
    # The same command as `make lab`, from this environment.
    cmd = [
        str(Path(sys.executable).parent / "jupyter"),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={workspace}",
        f"--IdentityProvider.token={token}",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = root / "lab.log"
    # Its own session, so that stopping it reaches every process it started; and it gets SIGTERM
    # (on which it shuts its kernels down) should pytest die without tearing this fixture down.
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
    server = Lab(root, workspace, port, token, proc, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                server.api("/api/status", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{server.log_tail()}")
                time.sleep(0.5)
        yield server
    finally:
        _stop_lab(server)


def _stop_lab(server: Lab) -> None:
    with contextlib.suppress(OSError):
        server.shutdown_kernels()
    with contextlib.suppress(OSError):
        server.api("/api/shutdown", method="POST", timeout=10)
    try:
        server.proc.wait(20)
    except subprocess.TimeoutExpired:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, sig)
        try:
            server.proc.wait(10)
            break
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory):
    """Chromium with a fresh profile, driven by Playwright through ``executable_path``."""
    chromium = _ensure_chromium()
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        # launch_persistent_context takes the profile folder: Playwright passes it to Chromium as
        # --user-data-dir (it refuses that flag in `args`).
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(chromium),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context, lab):
    """A fresh tab; afterwards it is closed and every kernel it started is shut down."""
    tab = browser_context.new_page()
    tab.set_default_timeout(60_000)
    try:
        yield tab
    finally:
        with contextlib.suppress(Exception):
            tab.close()
        lab.shutdown_kernels(wait=False)


@contextlib.contextmanager
def screenshot_on_failure(page, name: str):
    """Save a screenshot of the page when the body fails (assertion, timeout or any error)."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(ARTIFACTS / f"FAILED-{name}.png"))
        raise


# ----------------------------------------------------------------------------------------------
# What the suite does with a notebook, and what it reports
# ----------------------------------------------------------------------------------------------

_CELLS_JS = """
() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')]
  .map(cell => ({
    code: cell.classList.contains('jp-CodeCell'),
    prompt: (cell.querySelector('.jp-InputPrompt') || {}).textContent || '',
    outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => ({
      mime: o.getAttribute('data-mime-type') || '',
      text: o.textContent.slice(0, 4000),
      widget: !!o.querySelector('.jupyter-widgets'),
    })),
  }))
"""

_IMAGES_JS = """
async (root) => {
  const out = [];
  for (const img of root.querySelectorAll('img')) {
    try {
      const bytes = await (await fetch(img.src)).arrayBuffer();
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      out.push({src: img.src, loaded: img.complete && img.naturalWidth > 0, size: bytes.byteLength,
                sha: Array.from(digest, b => b.toString(16).padStart(2, '0')).join('')});
    } catch (e) {
      out.push({src: img.src, loaded: false, size: 0, sha: 'unreadable: ' + e});
    }
  }
  return out;
}
"""

_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|-{20,}\n\w+(Error|Exception)")


def _kernel_idle(page, lab: Lab) -> bool:
    indicator = page.locator(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator"
    ).first
    if indicator.get_attribute("data-status") != "idle":
        return False
    return lab.kernels_idle()


def open_notebook(page, lab: Lab, path: str) -> None:
    """Open ``path`` (relative to the workspace) in a fresh JupyterLab layout; wait for its kernel."""
    page.goto(f"{lab.url}/lab/tree/{path}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    deadline = time.monotonic() + 90
    while not _kernel_idle(page, lab):
        if time.monotonic() > deadline:
            raise AssertionError(f"the kernel of {path} did not start:\n{lab.log_tail()}")
        time.sleep(0.5)


def run_all_cells(page, lab: Lab, timeout: float) -> float:
    """Run → Run All Cells, then wait until no cell is running and the kernel is idle; the time."""
    start = time.monotonic()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
    stable = 0
    while stable < 4:  # idle and nothing queued for four polls in a row (2 s)
        if time.monotonic() - start > timeout:
            raise AssertionError(f"Run All Cells did not finish within {timeout:.0f} s")
        time.sleep(0.5)
        prompts = [c["prompt"] for c in page.evaluate(_CELLS_JS) if c["code"]]
        started = any(re.search(r"\[\d+\]", p) for p in prompts)
        running = any("*" in p for p in prompts)
        stable = stable + 1 if started and not running and _kernel_idle(page, lab) else 0
    return time.monotonic() - start


def save_notebook(page, lab: Lab, path: str) -> nbformat.NotebookNode:
    """Save with Ctrl+S (as a learner does) and read back what JupyterLab wrote to disk."""
    file = lab.workspace / path
    before = file.stat().st_mtime_ns
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first.focus()
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while file.stat().st_mtime_ns == before:
        if time.monotonic() > deadline:
            raise AssertionError(f"Ctrl+S did not save {path}")
        time.sleep(0.2)
    time.sleep(0.5)  # let the write finish
    return nbformat.read(file, as_version=4)


def check_outputs(page, saved: nbformat.NotebookNode) -> tuple[list[str], int | None]:
    """Problems in the rendered notebook (errors, failed widgets, stubs without a friendly check),
    and the index of the first cell with one."""
    problems: list[str] = []
    first_bad = None
    cells = page.evaluate(_CELLS_JS)
    if len(cells) != len(saved.cells):
        return [
            f"the page shows {len(cells)} cells, the saved notebook has {len(saved.cells)}"
        ], None
    for i, (shown, cell) in enumerate(zip(cells, saved.cells, strict=True)):
        if cell.cell_type != "code":
            continue
        first_line = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
        where = f"cell {i} ({first_line!r})"
        if not re.search(r"\[\d+\]", shown["prompt"]):
            problems.append(f"{where} did not run (prompt {shown['prompt']!r})")
        for out in cell.outputs:
            if out.output_type == "error":
                problems.append(f"{where} raised {out.ename}: {out.evalue}")
        for out in shown["outputs"]:
            if _TRACEBACK.search(out["text"]):
                problems.append(f"{where} shows a traceback: {out['text'][:300]!r}")
            if "Error displaying widget" in out["text"]:
                problems.append(f"{where} shows {out['text'][:200]!r}")
            if "Loading widget..." in out["text"]:
                problems.append(f"{where}: a widget is still 'Loading widget...'")
        n_saved = sum(
            WIDGET_VIEW_MIME in out.get("data", {})
            for out in cell.outputs
            if out.output_type in ("display_data", "execute_result")
        )
        n_shown = sum(
            out["widget"] or "Error displaying widget" in out["text"] for out in shown["outputs"]
        )
        if n_shown < n_saved:
            problems.append(
                f"{where} displayed {n_saved} widget(s) but the page renders {n_shown}: is the "
                f"widget manager (@jupyter-widgets/jupyterlab-manager) missing?"
            )
        if course.CODE_STUB in cell.source:
            problems += _check_stub(i, cells, saved)
        if problems and first_bad is None:
            first_bad = i
    return problems, first_bad


def _check_stub(i: int, cells: list[dict], saved: nbformat.NotebookNode) -> list[str]:
    """An exercise stub only defines a function; the self-check after it says what to do."""
    name = re.search(r"def (\w+)", saved.cells[i].source)
    name = name.group(1) if name else f"cell {i}"
    for j in range(i + 1, len(saved.cells)):
        cell = saved.cells[j]
        if cell.cell_type == "code" and "checks.check_" in cell.source:
            text = "\n".join(out["text"] for out in cells[j]["outputs"])
            if STUB_MESSAGE not in text or "Traceback" in text:
                return [
                    f"the self-check of the stub {name!r} (cell {j}) shows {text[:300]!r}, "
                    f"expected its friendly {STUB_MESSAGE!r} message"
                ]
            return []
        if course.CODE_STUB in cell.source:
            break
    return [f"the stub {name!r} (cell {i}) has no self-check cell after it"]


def _image_state(widget) -> list[dict]:
    return widget.evaluate(_IMAGES_JS)


_CONTROL_INFO_JS = """
c => {
  const box = c.closest('.widget-inline-hbox, .widget-toggle-buttons') || c;
  const labels = [...box.querySelectorAll('.widget-label, .widget-label-basic')]
    .map(l => l.textContent.replace(/\u200b/g, '').trim()).filter(t => t);
  return {tag: c.tagName, type: c.type || '', cls: String(c.className),
          now: c.getAttribute('aria-valuenow'), max: c.getAttribute('aria-valuemax'),
          index: c.selectedIndex, n: c.options ? c.options.length : 0,
          label: labels[0] || c.textContent || ''};
}
"""


def _press_first_control(page, widget) -> tuple[str, str | None]:
    """Move the widget's first control with the keyboard.

    Returns what was pressed, and a problem when the control is of a kind this suite cannot move
    (teach it here rather than let a widget go untested).
    """
    control = widget.locator(CONTROLS).first
    control.scroll_into_view_if_needed()
    info = control.evaluate(_CONTROL_INFO_JS)
    label = info["label"].strip() or info["tag"].lower()
    if "noUi-handle" in info["cls"]:  # every ipywidgets slider
        # Where the slider is: its readout text (the handle's aria-valuenow lags behind).
        readout = widget.locator(".widget-readout").first

        def position() -> str:
            return readout.text_content().strip() if readout.count() else str(info["now"])

        start = position()
        control.focus()
        at_max = info["now"] is not None and float(info["now"]) >= float(info["max"])
        keys = ["ArrowLeft", "ArrowRight"] if at_max else ["ArrowRight", "ArrowLeft"]
        for key in keys:  # the other way if the handle cannot go this way (a range's other end)
            for _ in range(3):
                page.keyboard.press(key)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                now = position()
                if now != start:
                    return f"slider {label!r}: {key} ×3 from {start} to {now}", None
                time.sleep(0.1)
        # The slider is back where it was: the kernel refused the new value (a broken observer
        # rolls it back). The image check that follows reports it.
        return f"slider {label!r}: {' and '.join(keys)} ×3, it stayed at {start}", None
    if info["tag"] == "SELECT":  # Dropdown, Select
        # JupyterLab binds ArrowDown/ArrowUp to "select the next cell" in command mode, so they do
        # not reach a focused dropdown; End and Home do.
        control.focus()
        key = "Home" if info["index"] == info["n"] - 1 else "End"
        page.keyboard.press(key)
        return f"dropdown {label!r}: {key}", None
    if "widget-toggle-button" in info["cls"]:  # ToggleButtons: press one that is not selected
        group = widget.locator(".widget-toggle-buttons").first
        target = group.locator("button:not(.mod-active)").first
        target.focus()
        page.keyboard.press("Space")
        return f"toggle buttons {label!r}: Space on {target.text_content()!r}", None
    if info["tag"] == "BUTTON" or info["type"] == "checkbox":  # Button, ToggleButton, Checkbox
        control.focus()
        page.keyboard.press("Space")
        return f"{info['tag'].lower()} {label!r}: Space", None
    what = f"<{info['tag'].lower()} type={info['type']!r}> {label!r}"
    return what, f"its first control, {what}, is of a kind this suite cannot move yet"


def drive_widgets(page, lab: Lab, name: str, timeout: float = 20) -> tuple[list[str], list[str]]:
    """Move every widget's first control; the problems, and what was pressed for each widget."""
    problems: list[str] = []
    moves: list[str] = []
    widgets = page.locator(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output:has(.jupyter-widgets)"
    )
    driven = 0
    for k in range(widgets.count()):
        widget = widgets.nth(k)
        if widget.locator(CONTROLS).count() == 0:
            continue  # a display-only widget (a progress bar): rendering is checked, not driven
        driven += 1
        before = _image_state(widget)
        if not before:
            problems.append(f"widget {k} has controls but no image")
            continue
        bad = [im for im in before if not im["loaded"]]
        if bad:
            problems.append(f"widget {k}: its image did not load ({bad[0]['sha']})")
            continue
        what, cannot = _press_first_control(page, widget)
        moves.append(f"widget {k}: {what}")
        if cannot:
            problems.append(f"widget {k}: {cannot}")
            continue
        deadline = time.monotonic() + timeout
        last, stable = None, 0
        while stable < 2:  # the same new image on two reads 0.5 s apart, kernel idle
            if time.monotonic() > deadline:
                problems.append(
                    f"widget {k}: moving its first control ({what}) did not change its image "
                    f"within {timeout:.0f} s"
                )
                break
            time.sleep(0.5)
            now = [im["sha"] for im in _image_state(widget)]
            changed = now != [im["sha"] for im in before] and all(
                not s.startswith("unreadable") for s in now
            )
            stable = stable + 1 if changed and now == last and _kernel_idle(page, lab) else 0
            last = now
        widget.locator("img").first.scroll_into_view_if_needed()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        suffix = "" if driven == 1 else f"-widget{driven}"
        page.screenshot(path=str(ARTIFACTS / f"{name}{suffix}.png"))
    return problems, moves


def check_in_browser(page, lab: Lab, path: str, name: str, timeout: float) -> dict:
    """Everything the suite checks about one notebook; returns the problems found and timings."""
    t0 = time.monotonic()
    open_notebook(page, lab, path)
    t_open = time.monotonic() - t0
    t_run = run_all_cells(page, lab, timeout)
    page.wait_for_timeout(1000)  # widget views render in the page after the kernel is done
    saved = save_notebook(page, lab, path)
    problems, first_bad = check_outputs(page, saved)
    if first_bad is not None:
        cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
        cell.nth(first_bad).scroll_into_view_if_needed()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}-first-problem.png"))
    t_widgets = time.monotonic()
    widget_problems, moves = drive_widgets(page, lab, name)
    t_widgets = time.monotonic() - t_widgets
    problems += widget_problems
    if not moves:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    return {
        "problems": problems,
        "widgets": len(moves),
        "moves": moves,
        "open_s": t_open,
        "run_s": t_run,
        "widgets_s": t_widgets,
        "total_s": time.monotonic() - t0,
    }


# ----------------------------------------------------------------------------------------------
# The lessons
# ----------------------------------------------------------------------------------------------


def test_suite_covers_every_workspace_notebook_with_a_widget(lab):
    """The lessons driven below are exactly lesson 00 and the workspace's notebooks with widgets."""
    in_workspace = {
        path.stem
        for path in lab.workspace.glob("*.ipynb")
        if path.stem.startswith("00") or _uses_widgets(nbformat.read(path, as_version=4))
    }
    assert in_workspace == {lesson.name for lesson in LESSONS}
    assert "00_orientation" in in_workspace


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.name for lesson in LESSONS])
def test_lesson_runs_and_its_widgets_respond_in_jupyterlab(page, lab, lesson):
    path = f"{lesson.name}.ipynb"
    assert (lab.workspace / path).exists(), f"{path} is not in the learner workspace"
    with screenshot_on_failure(page, lesson.name):
        result = check_in_browser(page, lab, path, lesson.name, timeout=_budget(lesson.number) + 60)
        print(
            f"{lesson.name}: opened in {result['open_s']:.1f} s, ran in {result['run_s']:.1f} s, "
            f"{result['widgets']} widget(s) driven in {result['widgets_s']:.1f} s, "
            f"{result['total_s']:.1f} s in all"
        )
        print("\n".join(result["moves"]))
        assert not result["problems"], "\n".join(
            result["problems"] + [f"(screenshots: {ARTIFACTS}/{lesson.name}*.png)"]
        )
        saved = nbformat.read(lab.workspace / path, as_version=4)  # as Ctrl+S wrote it
        if _uses_widgets(saved):
            assert result["widgets"] >= 1, "the lesson uses widgets but none has a control"
        check_student_notebook(lesson, saved)


def check_student_notebook(lesson: course.Lesson, saved: nbformat.NotebookNode) -> None:
    """What a learner's run of the student notebook must print, read from the saved file: one
    stub per exercise, each one's friendly message, no traceback, and (lesson 00) the measurement
    after the exercises ran on the reference. (Once tests/test_student_notebooks.py, run outside
    the browser: the learner's run in JupyterLab covers it.)"""
    nbformat.validate(saved)
    code = [c for c in saved.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    n_stubs = sum(course.CODE_STUB in c.source for c in code)
    assert n_stubs == len(course.exercises(lesson)), n_stubs
    text = "\n".join(
        o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream"
    )
    assert text.count(STUB_MESSAGE) == n_stubs, text.count(STUB_MESSAGE)
    assert "Traceback" not in text
    if lesson.number == "00":
        assert "fitted slopes" in text


# ----------------------------------------------------------------------------------------------
# The detection catches broken widgets (temporary copies of lesson 00)
# ----------------------------------------------------------------------------------------------

# Silences the first exercise's self-check: the stub's cell then shows no friendly message.
SILENT_CHECK = """
checks.check_running_state = lambda fn, quiet=False: None
"""

# Replaces the widget harness's builder so that each widget's draw function works for the first
# picture and raises on every redraw: the widget renders, and then moving a control does nothing.
BREAK_REDRAW = """
import mamba_edu.widgets as _w
_build = _w.interactive_figure
def _redraw_breaks(controls, draw, **kwargs):
    drawn = []
    def draw_once(figure, **values):
        if drawn:
            raise RuntimeError("widget broken on purpose by the e2e test")
        drawn.append(True)
        return draw(figure, **values)
    return _build(controls, draw_once, **kwargs)
_w.interactive_figure = _redraw_breaks
"""

# Widgets whose first control is of each kind a lesson may use, built with the intact builder:
# the suite must move every one of them (and say so when it meets a kind it cannot move).
CONTROL_KINDS = {
    "IntRangeSlider": "W.IntRangeSlider(value=(2, 3), min=0, max=10, description='range')",
    "FloatSlider at its maximum": "W.FloatSlider(value=1, min=0, max=1, description='at max')",
    "FloatLogSlider": "W.FloatLogSlider(value=10, min=-1, max=3, description='log')",
    "SelectionSlider": "W.SelectionSlider(options=['p', 'q', 'r'], description='choice')",
    "Dropdown at its last option": "W.Dropdown(options=['x', 'y'], value='y', description='dd')",
    "ToggleButtons": "W.ToggleButtons(options=['a', 'b', 'c'], description='toggle')",
    "Checkbox": "W.Checkbox(value=False, description='check')",
    "IntText": "W.IntText(value=1, description='text')",
}
KINDS_SETUP = """
import ipywidgets as W
def _title(figure, **values):
    figure.add_subplot().set_title(repr(values))
def _kind(first):
    return _build({"first": first, "second": W.FloatSlider()}, _title, figsize=(4, 1))
"""

# A widget view whose model the kernel never created: JupyterLab says "Error displaying widget".
MISSING_MODEL = """
from IPython.display import display
display({"application/vnd.jupyter.widget-view+json":
         {"model_id": "0" * 32, "version_major": 2, "version_minor": 0},
         "text/plain": "a widget"}, raw=True)
"""

# The lesson's widget again, with a draw function that raises from the start: the cell fails.
BREAK_DRAW = """
def _draw_breaks(controls, draw, **kwargs):
    def draw_broken(figure, **values):
        raise RuntimeError("widget broken on purpose by the e2e test")
    return _build(controls, draw_broken, **kwargs)
_w.interactive_figure = _draw_breaks
widgets.memory_explorer(a=0.5)
"""

NOT_REACHED = 'print("Run All stops at the first error, so this cell never runs")'


def _lesson_00_copy(lab: Lab, name: str, broken: bool) -> str:
    """A copy of lesson 00's student notebook up to its widget cell, broken on purpose or not.

    The copy keeps the setup, the exercise stubs and the widget; the long measurement after the
    widget is left out to keep the suite quick. ``broken`` adds the cells above around them.
    """
    nb = nbformat.read(lab.workspace / "00_orientation.ipynb", as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    widget = next(i for i in code if "widgets." in nb.cells[i].source)
    cells = copy.deepcopy(nb.cells[: widget + 1])
    if broken:
        stub = next(i for i in code if course.CODE_STUB in nb.cells[i].source)
        new = nbformat.v4.new_code_cell
        cells = (
            cells[:stub]
            + [new(SILENT_CHECK)]
            + cells[stub:widget]
            + [new(BREAK_REDRAW), cells[widget], new(KINDS_SETUP)]
            + [new(f"_kind({control})") for control in CONTROL_KINDS.values()]
            + [new(MISSING_MODEL), new(BREAK_DRAW), new(NOT_REACHED)]
        )
    for i, cell in enumerate(cells):
        cell.id = f"copy-{i:03d}"
    nb.cells = cells
    folder = lab.workspace / BROKEN_DIR
    folder.mkdir(exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")
    return f"{BROKEN_DIR}/{name}.ipynb"


@pytest.fixture(scope="module")
def broken_copy(browser_context, lab):
    """What the suite reports about a copy of lesson 00 with its widgets broken on purpose."""
    tab = browser_context.new_page()
    tab.set_default_timeout(60_000)
    try:
        path = _lesson_00_copy(lab, "broken-widgets", broken=True)
        with screenshot_on_failure(tab, "broken-widgets"):
            result = check_in_browser(tab, lab, path, "broken-widgets", timeout=120)
        print("\n".join(["problems found in the broken copy:"] + result["problems"]))
        print("\n".join(["controls moved:"] + result["moves"]))
        print(
            f"broken copy: opened in {result['open_s']:.1f} s, ran in {result['run_s']:.1f} s, "
            f"widgets driven in {result['widgets_s']:.1f} s, {result['total_s']:.1f} s in all"
        )
        return result
    finally:
        tab.close()
        lab.shutdown_kernels(wait=False)


def test_detection_catches_a_widget_that_stops_redrawing(broken_copy):
    assert any(
        p.startswith("widget 0: moving its first control (slider 'decay a'")
        and "did not change its image" in p
        for p in broken_copy["problems"]
    ), broken_copy["problems"]


def test_detection_catches_a_widget_whose_draw_raises(broken_copy):
    problems = broken_copy["problems"]
    raised = [p for p in problems if "raised RuntimeError" in p]
    assert raised and "widget broken on purpose" in raised[0], problems
    assert any("_draw_breaks" in p and "shows a traceback" in p for p in problems), problems
    # Run All stopped at that error, and the suite says which cell never ran
    assert any("Run All stops" in p and "did not run" in p for p in problems), problems


def test_detection_catches_a_widget_that_cannot_be_displayed(broken_copy):
    assert any("Error displaying widget" in p for p in broken_copy["problems"])


def test_detection_catches_a_silent_self_check(broken_copy):
    assert any(
        "self-check of the stub 'running_state'" in p and STUB_MESSAGE in p
        for p in broken_copy["problems"]
    ), broken_copy["problems"]


def test_every_kind_of_control_is_moved_or_reported(broken_copy):
    """Widgets 1… of the copy: each kind of first control moves its figure, or is reported."""
    kinds = list(CONTROL_KINDS)
    moves = broken_copy["moves"][1 : 1 + len(kinds)]
    assert len(moves) == len(kinds), broken_copy["moves"]
    for k, kind in enumerate(kinds, start=1):
        mine = [p for p in broken_copy["problems"] if p.startswith(f"widget {k}:")]
        if kind == "IntText":
            assert mine and "cannot move yet" in mine[0], (kind, mine)
        else:
            assert not mine, (kind, mine)


def test_detection_catches_a_missing_widget_manager(page, lab):
    # JupyterLab without the ipywidgets extension: its files fail to load, as if not installed.
    page.route("**/lab/extensions/@jupyter-widgets/jupyterlab-manager/**", lambda r: r.abort())
    path = _lesson_00_copy(lab, "no-widget-manager", broken=False)
    with screenshot_on_failure(page, "no-widget-manager"):
        problems = check_in_browser(page, lab, path, "no-widget-manager", timeout=120)["problems"]
    assert any("memory_explorer" in p and "widget manager" in p for p in problems), problems


# ----------------------------------------------------------------------------------------------
# A killed run leaves no server, kernel or browser behind
# ----------------------------------------------------------------------------------------------

PROBE_TAG = "MAMBA_EDU_PROBE_TAG"


def _processes_tagged(tag: str) -> dict[int, str]:
    """Live processes (not zombies) whose environment carries ``tag``: pid -> command line.

    Everything a run starts inherits its environment (the server passes it on to its kernels,
    Playwright to Chromium), so this finds them even after they left the run's process tree.
    """
    marker = f"{PROBE_TAG}={tag}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if state != "Z":
            found[int(entry.name)] = cmdline
    return found


@pytest.mark.parametrize("kill", ["SIGTERM to its process group", "SIGKILL to pytest"])
def test_a_killed_run_leaves_nothing_behind(tmp_path, kill):
    """``tests/cleanup_probe.py`` holds the fixtures' JupyterLab, a kernel and Chromium; it is
    killed the way ``timeout`` does (SIGTERM to the group) or with SIGKILL (no teardown runs)."""
    tag, ready, log = secrets.token_hex(8), tmp_path / "ready", tmp_path / "probe.log"
    env = dict(os.environ, MAMBA_EDU_PROBE_READY=str(ready), **{PROBE_TAG: tag})
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*cmd, "tests/cleanup_probe.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert proc.poll() is None, f"the probe run ended early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the probe never got ready:\n{log.read_text()}"
            time.sleep(0.5)
        held = " ".join(_processes_tagged(tag).values())
        for what in ("jupyter-lab", "ipykernel", "chrom"):
            assert what in held, f"the probe holds no {what} process: {held[:2000]}"
        if kill.startswith("SIGTERM"):
            os.killpg(proc.pid, signal.SIGTERM)
            assert proc.wait(120) == pytest.ExitCode.INTERRUPTED, log.read_text()[-3000:]
        else:
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
        deadline = time.monotonic() + 60
        while (left := _processes_tagged(tag)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, f"still running after the run was killed ({kill}): {left}"
    finally:  # whatever happened, leave nothing running
        for pid in [proc.pid, *_processes_tagged(tag)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(30)
