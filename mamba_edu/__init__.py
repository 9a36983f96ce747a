"""mamba_edu: the package behind "Mamba from scratch", an interactive course from RNNs to Mamba.

One module per idea (see the README's lesson map), in three layers that import only downward:

1. Concepts, the NumPy references (and the small torch modules built on them): ``rnn``,
   ``linear_rnn``, ``scan``, ``lru``, ``ssm``, ``selective``, ``mamba`` (the block and a small
   LM), ``attention`` (the Transformer baseline); ``contract`` holds the argument checks they share
   with the fast kernels in ``mamba_edu.kernels`` (the repository's ``kernels/`` folder), which
   import nothing else from the package.
2. Course material: ``tasks`` and ``data`` (synthetic tasks, the stdlib-docstring corpus),
   ``train``, ``widgets``, ``plots``, ``checks/`` (the self-check harness and one declaration per
   exercise, keyed by its nbgrader grade_id), ``bench`` (timing helpers), ``experiments/`` (the long
   runs behind ``data/*.json``: ``mamba-edu run NAME``).
3. Tools around the course: ``course`` (notebooks, workspace, assignments), ``grading``,
   ``official`` (the one adapter that imports ``mamba_ssm`` on a CPU), ``cli``.

Notation (one name per idea, in the package, the kernels and the lessons; docs/NOTATION.md):

    =====================  ===============  ============================================
    idea                   in code          note
    =====================  ===============  ============================================
    input sequence         ``x``            mamba_ssm's kernels call it ``u``
    hidden state           ``h``            never ``x`` (S4 and mamba_ssm write x)
    output                 ``y``
    step size              ``delta``        Δ; ``delta_bias``
    state size             ``d_state``      N in shapes
    channels               ``D``            ``d_model`` / ``d_inner`` in the block
    batch size             ``batch``        never ``B`` (the matrix B)
    sequence length        ``L``
    =====================  ===============  ============================================

Layouts: single-sequence NumPy references take ``(L, D)``; scan and selective-scan APIs and every
kernel take ``(batch, D, L)``, time last, as ``mamba_ssm``; torch sequence modules take
``(batch, L, D)``.
"""

__version__ = "0.1.0"
