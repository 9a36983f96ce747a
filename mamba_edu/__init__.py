"""mamba_edu: the package behind "Mamba from scratch", an interactive course from RNNs to Mamba.

One module per idea (see the README's lesson map): ``rnn`` (the vanilla RNN and BPTT),
``linear_rnn`` (linear recurrences: unrolled, diagonalized, stacked), ``scan`` (first-order
recurrences), ``attention`` (the baseline), ``tasks`` (synthetic tasks), ``train`` (the training
loop), ``checks`` (exercise self-checks), ``widgets`` and ``plots``
(interactive figures), ``bench`` (honest timings), ``course`` and ``cli`` (notebooks, workspace,
the ``mamba-edu`` command). Fast kernels live in ``mamba_edu.kernels`` (the repository's
``kernels/`` folder).

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
