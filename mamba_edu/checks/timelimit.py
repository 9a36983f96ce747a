"""The time limit of a self-check: stop a learner's function that runs too long, kernel intact.

In the main thread (a Jupyter kernel's) an interval timer raises :class:`CheckTimeout` in the
running code, and again every 50 ms until it stops; elsewhere a watchdog injects it into a helper
thread. A bare ``except:`` catches it, so once time is up a line tracer raises it again from inside
the handler that caught it, which leaves that handler. Before the deadline the tracer only chains
to the one already installed (a debugger, coverage): about 1.3× on code made of many small Python
calls, nothing on NumPy work. Limits: one long call into compiled code (a huge matrix product) is
not interrupted, it finishes first; ``except:`` handlers nested in one another inside a loop are
not escaped.
"""

from __future__ import annotations

import ctypes
import math
import signal
import sys
import threading
from collections.abc import Callable
from numbers import Real
from typing import Any

PACKAGE = __name__.rpartition(".")[
    0
]  # "mamba_edu.checks": frames from here are never the learner's

_STOPPERS: dict[int, _Stopper] = {}  # thread id -> the stopper of the call running there


class CheckTimeout(BaseException):
    """Raised inside a learner's function that runs past its time limit.

    A ``BaseException`` so that ``except Exception:`` does not catch it. A bare ``except:`` does;
    creating a new instance (which Python does when an injected one reaches a handler) re-arms the
    line tracer, which raises again from inside that handler, so the exception leaves it.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        stopper = _STOPPERS.get(threading.get_ident())
        if stopper is not None and stopper.armed:
            stopper.trace_frames(sys._getframe(1))


def _is_harness(frame) -> bool:
    return frame.f_globals.get("__name__", "").startswith(PACKAGE)


class _Stopper:
    """Stops learner code in one thread once ``arm`` is called, even through ``except:`` blocks.

    Before the deadline it only chains to the trace function already there (a debugger, coverage).
    After it, every line the learner runs while handling a :class:`CheckTimeout` asks for another
    one, which leaves that handler; repeated injections do the rest.
    """

    def __init__(self) -> None:
        self.ident = threading.get_ident()
        self.previous = sys.gettrace()
        self.armed = False
        self.finished = False

    def trace(self, frame, event, arg):
        if not self.armed:
            return self.previous(frame, event, arg) if self.previous else None
        if _is_harness(frame):
            return None
        if event == "line" and isinstance(sys.exc_info()[1], CheckTimeout):
            self.inject()
        return self.trace

    def trace_frames(self, frame) -> None:
        sys.settrace(self.trace)
        while frame is not None and not _is_harness(frame):
            frame.f_trace, frame.f_trace_lines = self.trace, True
            frame = frame.f_back

    def inject(self) -> None:
        # Never call this with NULL to cancel: on CPython 3.11 that leaves the interpreter's
        # eval-breaker flag set for good and the thread spins. A pending injection is instead
        # always consumed inside the timed region (`plain` runs right after the learner returns).
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(self.ident), ctypes.py_object(CheckTimeout)
        )

    def start(self) -> None:
        _STOPPERS[self.ident] = self
        sys.settrace(self.trace)

    def stop(self) -> None:
        # May be interrupted once by a late injection; callers retry, so every step is idempotent.
        self.finished, self.armed = True, False
        sys.settrace(self.previous)
        _STOPPERS.pop(self.ident, None)


def _stop_quietly(stopper: _Stopper, *more: Callable[[], object]) -> None:
    for _ in range(10):
        try:
            stopper.stop()
            for step in more:
                step()
            return
        except CheckTimeout:
            continue  # an injection that landed during clean-up: clean up again


def run_with_timeout(call: Callable[[], Any], timeout: float | None) -> Any:
    """``call()``, stopped with :class:`CheckTimeout` after ``timeout`` seconds (None: no limit).

    In the main thread (a Jupyter kernel's) an interval timer raises in the running code and again
    every 50 ms until it stops (the timer also cuts ``time.sleep`` short). Elsewhere the call runs
    in a helper thread that a watchdog injects into. A single long C call (one huge matrix product)
    cannot be interrupted: it finishes first.
    """
    if timeout is None:
        return call()
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        stopper = _Stopper()

        def _alarm(signum, frame):
            if stopper.finished or stopper.armed and _is_harness(frame):
                return
            stopper.armed = True
            stopper.trace_frames(frame)
            if not _is_harness(frame):
                raise CheckTimeout()

        previous = signal.signal(signal.SIGALRM, _alarm)
        stopper.start()
        signal.setitimer(signal.ITIMER_REAL, timeout, 0.05)
        try:
            return call()
        finally:
            _stop_quietly(
                stopper,
                lambda: signal.setitimer(signal.ITIMER_REAL, 0),
                lambda: signal.signal(signal.SIGALRM, previous),
            )

    box: dict[str, Any] = {}
    started = threading.Event()

    def _target():
        box["stopper"] = stopper = _Stopper()
        started.set()
        try:
            stopper.start()
            try:
                box["value"] = call()
            finally:
                _stop_quietly(stopper)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller below
            box["error"] = exc

    worker = threading.Thread(target=_target, daemon=True)
    worker.start()
    started.wait()
    worker.join(timeout)
    if worker.is_alive():
        stopper = box["stopper"]
        stopper.armed = True
        frame = sys._current_frames().get(worker.ident)
        while frame is not None and not _is_harness(frame):
            frame.f_trace, frame.f_trace_lines = stopper.trace, True
            frame = frame.f_back
        for _ in range(40):  # two seconds of injections, every 50 ms
            if not worker.is_alive():
                break
            stopper.inject()
            worker.join(0.05)
        error = CheckTimeout()
        error.still_running = worker.is_alive()
        raise error
    if "error" in box:
        raise box["error"]
    return box.get("value")


def checked_timeout(timeout: Any) -> float | None:
    """``timeout`` if it is a usable time limit in seconds (or None: no limit); else a clear error."""
    blame = "This is a mistake in how the check was called, not in the function being checked."
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, Real):
        raise TypeError(
            f"timeout must be a number of seconds (int or float), got {timeout!r} "
            f"({type(timeout).__name__}). {blame}"
        )
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(
            f"timeout must be a positive, finite number of seconds, got {timeout!r}. "
            f"Pass None for no limit. {blame}"
        )
    return float(timeout)
