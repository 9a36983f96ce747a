import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def numba_cache(tmp_path_factory):
    """The course's kernels compiled once per test session, in a sandbox, for the grading tests:
    every grading sandbox starts from a copy (``mamba_edu.grading.warm_numba_cache``)."""
    from mamba_edu import grading

    return grading.warm_numba_cache(tmp_path_factory.mktemp("numba") / "cache")
