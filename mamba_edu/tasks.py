"""Sequence tasks, generated with seeds (synthetic) or read from data a package ships (real).

Each generator returns NumPy arrays ``(inputs, labels)`` and documents what makes it hard.
"""

from __future__ import annotations

import numpy as np

__all__ = ["recall_first_token", "digits_pixels", "delayed_xor", "selective_copying"]


def recall_first_token(n: int, L: int, n_classes: int = 8, n_noise: int = 8, seed: int = 0):
    """Remember the first token of a long sequence.

    Each sequence starts with a class token (ids 0 … n_classes−1) followed by L − 1 distractor
    tokens drawn uniformly from n_noise other ids; the label is the first token. Returns
    ``tokens`` (n, L) int64 and ``labels`` (n,) int64.

    Difficulty: chance accuracy is 1/n_classes, and nothing after the first step helps. A model read
    out at the last step must carry one token across L − 1 steps of distractors, so its state needs
    modes with |λ|^L not vanishing (|λ| ≥ 0.98 for L = 128 keeps 7.5% of the signal) and gradients
    that reach back L steps: a tanh RNN's gradients shrink like ρ^L (lesson 01), which is why it
    stays at chance for L in the hundreds with a small training budget.
    """
    if L < 1 or n < 1:
        raise ValueError(f"expected n >= 1 and L >= 1, got n={n}, L={L}")
    if n_classes < 2 or n_noise < 1:
        raise ValueError(f"expected n_classes >= 2 and n_noise >= 1, got {n_classes}, {n_noise}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    tokens = rng.integers(n_classes, n_classes + n_noise, (n, L))
    tokens[:, 0] = labels
    return tokens.astype(np.int64), labels.astype(np.int64)


def digits_pixels(seed: int = 0, test_fraction: float = 0.25):
    """Handwritten digits read pixel by pixel: 8×8 images as sequences of 64 intensities.

    Data: the 1,797 digit images that scikit-learn ships inside its package (a copy of the UCI
    optical-recognition test set; no download). Pixels scaled to [0, 1]. Returns
    ``(x_train, y_train), (x_test, y_test)`` with x of shape (n, 64, 1), split with ``seed``.

    Difficulty: a sequence model sees one pixel at a time and must integrate strokes across rows
    (8 steps apart) and the whole image (64 steps); a linear classifier on all 64 pixels at once
    reaches about 95%, the yardstick.
    """
    # imported here: scikit-learn is heavy and only this real-data task needs it
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.reshape(-1, 64, 1) / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def delayed_xor(n: int, L: int, delays: tuple[int, int] = (3, 7), seed: int = 0):
    """Random ±1 inputs; the label is 1 when the inputs a and b steps before the end differ.

    (a, b) = ``delays``: with T = L − 1 the last step, the label is x_{T−a} XOR x_{T−b}, i.e.
    whether x_{T−a}·x_{T−b} = −1. Returns ``inputs`` (n, L, 1) float32 and ``labels`` (n,) int64.

    Difficulty: any *linear* function of the inputs is uncorrelated with the label
    (E[x_i x_j x_k] = 0 for independent ±1 inputs), so the best linear fit in squared error or
    cross-entropy is a constant: chance, 50 % (a hand-set threshold on x_{T−a} + x_{T−b} gets 75 %,
    never more). The pieces the task needs (two delayed copies, then a product) are a linear
    recurrence followed by a nonlinearity (lesson 02).
    """
    a, b = (int(d) for d in delays)
    if n < 1 or L < 1:
        raise ValueError(f"expected n >= 1 and L >= 1, got n={n}, L={L}")
    if a == b or min(a, b) < 0 or max(a, b) >= L:
        raise ValueError(f"expected two different delays in 0..L-1 = 0..{L - 1}, got {delays}")
    rng = np.random.default_rng(seed)
    x = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(n, L))
    labels = (x[:, L - 1 - a] != x[:, L - 1 - b]).astype(np.int64)
    return x[..., None], labels


def selective_copying(n: int, L: int, n_memorize: int = 4, vocab: int = 8, seed: int = 0):
    """Copy the data tokens of a sequence, in order, skipping the blanks between them.

    Each sequence has ``L`` positions: ``n_memorize`` data tokens (ids 1 … vocab) at random
    positions, blanks (id 0) everywhere else; then ``n_memorize`` markers (id vocab + 1) that ask
    for the answer. The labels are the data tokens in order. Returns ``tokens``
    (n, L + n_memorize) int64 and ``labels`` (n, n_memorize) int64: the model answers at the marker
    positions.

    Difficulty (the Mamba paper's task, Gu & Dao 2023, Section 3.1, at a small scale): the spacing
    changes from one sequence to the next, so a time-invariant model, whose output is a fixed
    convolution of its input, cannot tell where the tokens were; it has to keep or drop a token
    by what it *is* (data or blank), which is what a selective Δ does. Chance is 1/vocab.
    """
    if n < 1 or n_memorize < 1 or vocab < 2:
        raise ValueError(
            f"expected n >= 1, n_memorize >= 1 and vocab >= 2, got n={n}, "
            f"n_memorize={n_memorize}, vocab={vocab}"
        )
    if L < n_memorize:
        raise ValueError(f"expected L >= n_memorize = {n_memorize} (room for the data), got L={L}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, vocab + 1, (n, n_memorize))
    # sorted random positions: argsort of uniform keys, the first n_memorize of each row
    positions = np.sort(np.argsort(rng.random((n, L)), axis=1)[:, :n_memorize], axis=1)
    tokens = np.zeros((n, L + n_memorize), dtype=np.int64)
    np.put_along_axis(tokens, positions, labels, axis=1)
    tokens[:, L:] = vocab + 1
    return tokens, labels.astype(np.int64)
