"""A run that holds JupyterLab, a kernel and Chromium until it is killed.

Not collected by ``pytest tests`` (the name does not start with ``test_``):
``test_e2e_browser.py::test_a_killed_run_leaves_nothing_behind`` runs it in a subprocess, kills
it, and checks that nothing it started is left running.
"""

import os
import time
from pathlib import Path

# the browser suite's own fixtures, so that their cleanup is what gets tested
from test_e2e_browser import browser_context, lab, page  # noqa: F401


def test_hold_a_server_a_kernel_and_chromium_until_killed(page, lab):  # noqa: F811
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.wait_for_selector(".jp-LauncherCard")
    lab.api("/api/kernels", method="POST", timeout=60)
    deadline = time.monotonic() + 90
    while not lab.kernels_idle():
        assert time.monotonic() < deadline, "the kernel did not start"
        time.sleep(0.5)
    Path(os.environ["MAMBA_EDU_PROBE_READY"]).write_text(str(os.getpid()))
    time.sleep(3600)  # until killed
