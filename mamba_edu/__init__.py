"""mamba_edu: the package behind "Mamba from scratch", an interactive course from RNNs to Mamba.

One module per idea (see the README's lesson map): ``rnn`` (the vanilla RNN and BPTT),
``linear_rnn`` (linear recurrences: unrolled, diagonalized, stacked), ``scan`` (first-order
recurrences), ``attention`` (the baseline), ``tasks`` (synthetic tasks), ``train`` (the training
loop), ``checks`` (exercise self-checks), ``widgets`` and ``plots``
(interactive figures), ``bench`` (honest timings), ``course`` and ``cli`` (notebooks, workspace,
the ``mamba-edu`` command). Fast kernels live in ``mamba_edu.kernels`` (the repository's
``kernels/`` folder).
"""

__version__ = "0.1.0"
