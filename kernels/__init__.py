"""Fast implementations of the course's reference code ("production kernels").

Installed as ``mamba_edu.kernels``. The CPU (numba), CUDA (numba-cuda) and Triton kernels arrive
with lesson 03; each is checked against the NumPy reference in ``mamba_edu``.
"""

__all__: list[str] = []
