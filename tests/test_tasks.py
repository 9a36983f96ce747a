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


def test_delayed_xor_labels_are_the_xor_of_two_delayed_inputs():
    x, labels = tasks.delayed_xor(500, 10, delays=(1, 4), seed=0)
    assert x.shape == (500, 10, 1) and labels.shape == (500,)
    assert set(np.unique(x)) == {-1.0, 1.0}
    np.testing.assert_array_equal(labels, (x[:, 8, 0] * x[:, 5, 0] < 0).astype(int))
    assert 0.4 < labels.mean() < 0.6
    # no linear function of the inputs helps: every input is uncorrelated with the label
    corr = [abs(np.corrcoef(x[:, t, 0], labels)[0, 1]) for t in range(10)]
    assert max(corr) < 0.15
    again, _ = tasks.delayed_xor(500, 10, delays=(1, 4), seed=0)
    np.testing.assert_array_equal(x, again)
    with pytest.raises(ValueError, match="delays"):
        tasks.delayed_xor(2, 5, delays=(1, 5))
    with pytest.raises(ValueError, match="different"):
        tasks.delayed_xor(2, 5, delays=(2, 2))


def test_selective_copying_layout():
    tokens, labels = tasks.selective_copying(300, 20, n_memorize=3, vocab=5, seed=2)
    assert tokens.shape == (300, 23) and labels.shape == (300, 3)
    assert np.all(tokens[:, 20:] == 6)  # the markers that ask for the answer
    body = tokens[:, :20]
    assert np.all((body == 0).sum(axis=1) == 17)  # blanks everywhere else
    for row, label in zip(body, labels, strict=True):
        assert np.array_equal(row[row != 0], label)  # the data tokens, in order
    assert labels.min() == 1 and labels.max() == 5
    # the spacing differs between sequences: that is what defeats a time-invariant model
    spacings = {tuple(np.flatnonzero(row)) for row in body}
    assert len(spacings) > 250
    again = tasks.selective_copying(300, 20, n_memorize=3, vocab=5, seed=2)
    assert np.array_equal(again[0], tokens) and np.array_equal(again[1], labels)


def test_selective_copying_rejects_bad_sizes():
    with pytest.raises(ValueError, match="L >= n_memorize"):
        tasks.selective_copying(4, 2, n_memorize=3)
    with pytest.raises(ValueError, match="vocab >= 2"):
        tasks.selective_copying(4, 10, vocab=1)
