"""Exercise self-checks: compare a learner's function with the reference and say what differs.

Every exercise is *declared* as data in the module of its lesson (``lesson00`` … ``lesson09``),
keyed by its nbgrader ``grade_id``: the reference, the input cases (random ones and edge cases),
the tolerances and the hint. One harness (:mod:`mamba_edu.checks.harness`) runs them all and
reports the first problem in words. Lessons and nbgrader's hidden tests call
``checks.check_<grade_id>(fn)`` (``quiet=True`` to print nothing, ``timeout=`` seconds per call);
:data:`EXERCISES` maps every ``grade_id`` to its :class:`Exercise`.
"""

from __future__ import annotations

from . import (
    lesson00,
    lesson01,
    lesson02,
    lesson03,
    lesson04,
    lesson05,
    lesson06,
    lesson07,
    lesson08,
    lesson09,
)
from .exercise import Exercise, random_cases
from .harness import Case, CheckResult, CheckTimeout, check_function, describe_mismatch
from .lesson00 import check_causal_attention, check_running_state
from .lesson01 import check_jacobian_norms, check_rnn_backward, check_rnn_forward
from .lesson02 import check_convolution_kernel, check_diagonalize, check_linear_rnn
from .lesson03 import (
    check_associativity_gap,
    check_chunked_scan,
    check_combine,
    check_hillis_steele,
)
from .lesson04 import check_gamma, check_lru_eigenvalues, check_ring_init
from .lesson05 import check_fft_causal_conv, check_vandermonde_kernel, check_zoh
from .lesson06 import check_influence, check_s6_one_state, check_selective_scan_loop
from .lesson07 import (
    check_causal_depthwise_conv,
    check_conv_step,
    check_mamba_block,
    check_mamba_step,
)
from .lesson08 import check_chunk_backward, check_chunk_states, check_scan_io_bytes
from .lesson09 import check_closest_width, check_fit_linear_memory, check_listops_value

LESSONS = {
    "00": lesson00,
    "01": lesson01,
    "02": lesson02,
    "03": lesson03,
    "04": lesson04,
    "05": lesson05,
    "06": lesson06,
    "07": lesson07,
    "08": lesson08,
    "09": lesson09,
}

EXERCISES: dict[str, Exercise] = {}
for _module in LESSONS.values():
    for _name, _exercise in _module.EXERCISES.items():
        if _name in EXERCISES:
            raise ImportError(f"exercise {_name!r} is declared by two lessons")
        EXERCISES[_name] = _exercise

__all__ = [
    "Case",
    "CheckResult",
    "CheckTimeout",
    "EXERCISES",
    "Exercise",
    "LESSONS",
    "check_function",
    "describe_mismatch",
    "random_cases",
    # lesson 00
    "check_running_state",
    "check_causal_attention",
    # lesson 01
    "check_rnn_forward",
    "check_rnn_backward",
    "check_jacobian_norms",
    # lesson 02
    "check_linear_rnn",
    "check_convolution_kernel",
    "check_diagonalize",
    # lesson 03
    "check_combine",
    "check_associativity_gap",
    "check_hillis_steele",
    "check_chunked_scan",
    # lesson 04
    "check_lru_eigenvalues",
    "check_ring_init",
    "check_gamma",
    # lesson 05
    "check_zoh",
    "check_vandermonde_kernel",
    "check_fft_causal_conv",
    # lesson 06
    "check_selective_scan_loop",
    "check_influence",
    "check_s6_one_state",
    # lesson 07
    "check_causal_depthwise_conv",
    "check_conv_step",
    "check_mamba_block",
    "check_mamba_step",
    # lesson 08
    "check_scan_io_bytes",
    "check_chunk_states",
    "check_chunk_backward",
    # lesson 09
    "check_listops_value",
    "check_closest_width",
    "check_fit_linear_memory",
]
