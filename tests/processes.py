"""Servers, kernels and browsers the tests start must not outlive the test run.

Two ways a run ends early, and what covers each:

* SIGTERM (``timeout``, a CI limit, ``kill``): by default Python dies on the spot and no fixture
  teardown runs. The repository's ``conftest.py`` turns the first SIGTERM into
  ``KeyboardInterrupt``, which pytest handles like Ctrl-C: the running test stops and every
  fixture is torn down (the JupyterLab fixture shuts its kernels and server down, the browser
  fixture closes Chromium).
* SIGKILL (nothing runs in the dying process): a child started with ``die_with_parent`` as its
  ``preexec_fn`` gets a signal from the kernel (Linux's ``PR_SET_PDEATHSIG``) when pytest dies.
  A Jupyter server stops its kernels on SIGTERM, and a kernel stops by itself when the process
  that started it is gone (ipykernel's parent poller).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(sig: int = signal.SIGTERM):
    """A ``preexec_fn``: the child gets ``sig`` when the thread that started it exits.

    Linux ties the signal to the parent *thread*, so start the child from the thread that lives
    as long as the child should (pytest's main thread). Elsewhere than Linux it does nothing.
    """
    if not sys.platform.startswith("linux"):
        return lambda: None
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls into it

    def preexec() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(70)  # cannot promise to die with the parent: do not start at all
        if os.getppid() != parent:  # the parent died before prctl: the signal would never come
            os.kill(os.getpid(), sig)

    return preexec
