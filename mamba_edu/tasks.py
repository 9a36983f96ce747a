"""Sequence tasks, generated with seeds (synthetic) or read from data a package ships (real).

Each generator returns NumPy arrays ``(inputs, labels)`` and documents what makes it hard.
"""

from __future__ import annotations

import random

import numpy as np

__all__ = [
    "recall_first_token",
    "digits_pixels",
    "delayed_xor",
    "selective_copying",
    "LISTOPS_SYMBOLS",
    "LISTOPS_VOCAB",
    "listops",
    "listops_text",
    "induction_heads",
    "long_copy",
    "mqar",
]


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


# ----------------------------------------------------------------------------------------------
# Lesson 09's benchmark tasks: ListOps, induction heads, long copying, multi-query recall
# ----------------------------------------------------------------------------------------------

LISTOPS_PAD = 0
LISTOPS_OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
# token id → symbol: 0 padding, 1 … 10 the digits 0 … 9, then the four operators and "]"
LISTOPS_SYMBOLS = ("<pad>", *(str(d) for d in range(10)), *LISTOPS_OPERATORS, "]")
LISTOPS_VOCAB = len(LISTOPS_SYMBOLS)
_LISTOPS_END = LISTOPS_VOCAB - 1


def _listops_apply(op: str, args: list[int]) -> int:
    if op == "[MIN":
        return min(args)
    if op == "[MAX":
        return max(args)
    if op == "[MED":  # LRA's definition: int(np.median(...)), the mean of the middle two truncated
        return int(np.median(args))
    return sum(args) % 10  # "[SM": sum modulo 10


def _listops_tree(rng, depth: int, max_depth: int, max_args: int, p_operator: float):
    """One random expression as (symbols, value); the root (depth 1) is always an operator."""
    if depth > 1 and (depth >= max_depth or rng.random() >= p_operator):
        digit = rng.randrange(10)
        return [str(digit)], digit
    op = rng.choice(LISTOPS_OPERATORS)
    symbols, args = [op], []
    for _ in range(rng.randint(2, max_args)):
        sub_symbols, value = _listops_tree(rng, depth + 1, max_depth, max_args, p_operator)
        symbols += sub_symbols
        args.append(value)
    return symbols + ["]"], _listops_apply(op, args)


def listops(
    n: int, max_length: int = 64, min_length: int = 1, max_depth: int = 4, max_args: int = 5,
    p_operator: float = 0.25, seed: int = 0,
):  # fmt: skip
    """Nested list operations (ListOps, as in the Long Range Arena): predict an expression's value.

    Expressions are trees of ``[MIN``, ``[MAX``, ``[MED`` (median, truncated to an integer) and
    ``[SM`` (sum modulo 10) over digits, e.g. ``[MAX 2 9 [MIN 4 7 ] 0 ]`` = 9. Each operator takes
    2 … ``max_args`` arguments; below the root an argument is itself an operator with probability
    ``p_operator`` (the LRA generator's 0.25) until ``max_depth``. Expressions longer than
    ``max_length`` or shorter than ``min_length`` symbols are drawn again (LRA keeps 500 … 2000;
    a ``min_length`` near ``max_length`` forces deep or wide trees). Returns ``tokens`` (n, max_length) int64, left-padded
    with 0 so that the expression ends at the last position (ids: :data:`LISTOPS_SYMBOLS`), and
    ``labels`` (n,) int64 in 0 … 9.

    Difficulty: the value of an inner bracket must be kept (as one digit) until its parent closes,
    possibly many symbols later, and the parent's operator must be remembered across its children:
    a stack, which a fixed-size state can hold only up to some depth. Chance is about 1/10 (the
    label distribution is not uniform: MIN and MAX pull towards 0 and 9).
    """
    if n < 1 or max_args < 2 or max_depth < 1:
        raise ValueError(
            f"expected n >= 1, max_args >= 2 and max_depth >= 1, got n={n}, max_args={max_args}, "
            f"max_depth={max_depth}"
        )
    if max_length < 4 or not 1 <= min_length <= max_length:
        raise ValueError(
            "expected max_length >= 4 (the shortest expression) and 1 <= min_length <= "
            f"max_length, got min_length={min_length}, max_length={max_length}"
        )
    if not 0.0 <= p_operator < 1.0:
        raise ValueError(f"expected 0 <= p_operator < 1, got {p_operator}")
    # Python's own generator: drawing node by node, it is ~10x faster than NumPy's per call
    rng = random.Random(seed)
    index = {symbol: i for i, symbol in enumerate(LISTOPS_SYMBOLS)}
    tokens = np.zeros((n, max_length), dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64)
    for row in range(n):
        while True:
            symbols, value = _listops_tree(rng, 1, max_depth, max_args, p_operator)
            if min_length <= len(symbols) <= max_length:
                break
        tokens[row, max_length - len(symbols) :] = [index[s] for s in symbols]
        labels[row] = value
    return tokens, labels


def listops_text(tokens) -> str:
    """One ListOps row (token ids, padding included) as text: ``[MAX 2 9 [MIN 4 7 ] 0 ]``."""
    ids = np.asarray(tokens)
    if ids.ndim != 1 or ids.size == 0 or ids.min() < 0 or ids.max() >= LISTOPS_VOCAB:
        raise ValueError(f"expected one row of ids in 0 … {LISTOPS_VOCAB - 1}, got {ids!r}")
    return " ".join(LISTOPS_SYMBOLS[i] for i in ids if i != LISTOPS_PAD)


def induction_heads(n: int, L: int, vocab: int = 16, seed: int = 0):
    """Induction heads: after a trigger token, recall the token that followed it earlier.

    Each sequence holds ``L`` tokens drawn from ids 0 … vocab − 1, except the trigger (id
    ``vocab``), which appears twice: once at a random position p ≤ L − 3, and at the last
    position. The label is the token right after the first trigger, ``tokens[p + 1]``. Returns
    ``tokens`` (n, L) int64 and ``labels`` (n,) int64.

    Difficulty (Olsson et al. 2022; the H3 and Mamba papers' synthetic): the model must find an
    earlier match of the current token and copy its successor. Trained at one L and tested at
    longer ones, it measures length extrapolation: the gap between the two triggers grows with L,
    and a model that learned "look back about L steps" or position embeddings it never saw fails.
    Chance is 1/vocab.
    """
    if n < 1 or vocab < 2:
        raise ValueError(f"expected n >= 1 and vocab >= 2, got n={n}, vocab={vocab}")
    if L < 3:
        raise ValueError(f"expected L >= 3 (trigger, answer, trigger), got L={L}")
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, (n, L))
    first = rng.integers(0, L - 2, n)  # the first trigger at p ≤ L − 3: its answer is not last
    rows = np.arange(n)
    tokens[rows, first] = vocab
    tokens[:, -1] = vocab
    return tokens.astype(np.int64), tokens[rows, first + 1].astype(np.int64)


def long_copy(n: int, length: int, vocab: int = 16, seed: int = 0):
    """Copy a random string, token by token, after a separator (teacher forcing).

    The string s (``length`` tokens from ids 0 … vocab − 1) is followed by a separator (id
    ``vocab``) and then by s without its last token, as when a model writes its copy one token at
    a time and reads what it wrote. ``tokens`` = [s, separator, s[:−1]], shape (n, 2·length);
    ``labels`` = s, shape (n, length): the answer at each of the last ``length`` positions is the
    next token of the copy.

    Difficulty (Jelassi et al. 2024, "Repeat After Me"): the whole string must be in memory when
    the separator arrives. A model with a fixed state of S numbers can hold at most about
    S / log2(vocab) tokens of it exactly; attention keeps every token. Chance is 1/vocab.
    """
    if n < 1 or length < 1 or vocab < 2:
        raise ValueError(
            f"expected n >= 1, length >= 1 and vocab >= 2, got n={n}, length={length}, "
            f"vocab={vocab}"
        )
    rng = np.random.default_rng(seed)
    s = rng.integers(0, vocab, (n, length))
    separator = np.full((n, 1), vocab)
    return np.concatenate([s, separator, s[:, :-1]], axis=1).astype(np.int64), s.astype(np.int64)


def mqar(n: int, n_pairs: int, vocab: int = 64, seed: int = 0):
    """Multi-query associative recall (after Zoology's MQAR): key–value pairs, then every key again.

    Keys are drawn from ids 0 … vocab/2 − 1 and values from vocab/2 … vocab − 1, all different
    within a sequence (as in Zoology). ``tokens`` = [k1 v1 k2 v2 … kP vP, q1 … qP] with the
    queries q a random order of the P keys, shape (n, 3P); ``labels`` (n, P): the value stored
    with each query, answered at the last P positions.

    Simplification of Zoology's task: the queries come together at the end, not spread over the
    rest of the sequence with random gaps. Difficulty: at the first query every pair must be in
    memory, P · (log2 of the key and value choices) bits: a fixed state that is too small loses
    some, while attention can look each key up. Chance is 2/vocab.
    """
    half = vocab // 2
    if n < 1 or n_pairs < 1:
        raise ValueError(f"expected n >= 1 and n_pairs >= 1, got n={n}, n_pairs={n_pairs}")
    if half < n_pairs:
        raise ValueError(
            f"expected vocab >= 2 * n_pairs (keys and values all different), got vocab={vocab}, "
            f"n_pairs={n_pairs}"
        )
    rng = np.random.default_rng(seed)
    # P different keys and values per row: the first P of a random permutation of each half
    keys = np.argsort(rng.random((n, half)), axis=1)[:, :n_pairs]
    values = half + np.argsort(rng.random((n, vocab - half)), axis=1)[:, :n_pairs]
    order = np.argsort(rng.random((n, n_pairs)), axis=1)
    tokens = np.empty((n, 3 * n_pairs), dtype=np.int64)
    tokens[:, 0 : 2 * n_pairs : 2] = keys
    tokens[:, 1 : 2 * n_pairs : 2] = values
    tokens[:, 2 * n_pairs :] = np.take_along_axis(keys, order, axis=1)
    return tokens, np.take_along_axis(values, order, axis=1).astype(np.int64)
