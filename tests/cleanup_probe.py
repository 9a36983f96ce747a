"""A run that holds JupyterLab, a kernel and Chromium until it is killed.

Not collected by ``pytest tests`` (the name does not start with ``test_``):
``test_e2e_browser.py::test_a_killed_run_leaves_nothing_behind`` runs it in a subprocess, kills
it, and checks that nothing it started is left running.
"""

import os
import time
from pathlib import Path

import nbformat

# the browser suite's own fixtures, so that their cleanup is what gets tested
from test_e2e_browser import browser_context, lab, open_notebook, page  # noqa: F401


def test_hold_a_server_a_kernel_and_chromium_until_killed(page, lab):  # noqa: F811
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('held')")])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab.workspace / "cleanup-probe.ipynb")
    open_notebook(page, lab, "cleanup-probe.ipynb")  # waits until its kernel is idle
    Path(os.environ["MAMBA_EDU_PROBE_READY"]).write_text(str(os.getpid()))
    time.sleep(3600)  # until killed
