import numpy as np
import pytest

from mamba_edu import tasks


def test_recall_first_token_layout():
    tokens, labels = tasks.recall_first_token(200, 30, n_classes=5, n_noise=3, seed=4)
    assert tokens.shape == (200, 30) and labels.shape == (200,)
    assert np.array_equal(tokens[:, 0], labels)
    assert (
        tokens[:, 1:].min() >= 5 and tokens[:, 1:].max() < 8
    )  # distractors never look like a class
    assert set(np.unique(labels)) == set(range(5))
    again, _ = tasks.recall_first_token(200, 30, n_classes=5, n_noise=3, seed=4)
    assert np.array_equal(tokens, again)


def test_recall_rejects_bad_sizes():
    with pytest.raises(ValueError, match="L >= 1"):
        tasks.recall_first_token(4, 0)


def test_digits_are_the_shipped_images_split_without_overlap():
    (xtr, ytr), (xte, yte) = tasks.digits_pixels(seed=0)
    assert xtr.shape[1:] == (64, 1) and len(xtr) + len(xte) == 1797
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0
    assert set(np.unique(yte)) == set(range(10))
    rows = {row.tobytes() for row in xtr[:, :, 0]}
    overlap = sum(row.tobytes() in rows for row in xte[:, :, 0])
    assert overlap < 5  # a handful of identical images exist in the data itself
