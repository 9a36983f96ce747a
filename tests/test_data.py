import hashlib
import json
import platform

import numpy as np
import pytest

from mamba_edu import data


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 60,000-character corpus (the full million is built the same way, only longer)."""
    cache = tmp_path_factory.mktemp("corpus")
    return data.load_corpus(max_chars=60_000, cache_dir=cache), cache


def test_corpus_is_docstrings_deterministic_and_cached(small):
    corpus, cache = small
    assert 60_000 <= len(corpus.text) < 80_000
    assert corpus.sha256 == hashlib.sha256(corpus.text.encode()).hexdigest()
    assert platform.python_version() in corpus.provenance
    text, provenance = data.build_corpus(max_chars=60_000)  # a second, independent build
    assert text == corpus.text and provenance == corpus.provenance
    meta = json.loads((cache / "stdlib_docstrings_60000.json").read_text())
    assert meta["sha256"] == corpus.sha256 and meta["chars"] == len(corpus.text)
    # the first file in sorted order is __future__.py: its module docstring opens the text
    import __future__

    assert corpus.text.startswith(__future__.__doc__.strip()[:40])


def test_corrupt_cache_is_rebuilt(small):
    corpus, cache = small
    (cache / "stdlib_docstrings_60000.txt").write_text("tampered", encoding="utf-8")
    again = data.load_corpus(max_chars=60_000, cache_dir=cache)
    assert again.text == corpus.text


def test_vocab_round_trip_and_split(small):
    corpus, _ = small
    vocab = data.CharVocab(corpus.text)
    ids = vocab.encode(corpus.text)
    assert ids.dtype == np.int64 and vocab.decode(ids) == corpus.text
    assert 60 < vocab.size < 130 and vocab.chars == sorted(vocab.chars)
    train, val = data.train_val_split(ids, 0.1)
    assert len(train) + len(val) == len(ids) and abs(len(val) - 0.1 * len(ids)) <= 1
    np.testing.assert_array_equal(np.concatenate([train, val]), ids)  # contiguous, in order
    a = data.train_val_split(ids, 0.1)
    np.testing.assert_array_equal(a[1], val)


def test_random_windows_are_shifted_slices():
    ids = np.arange(100)
    x, y = data.random_windows(ids, 4, 10, rng=0)
    assert x.shape == y.shape == (4, 10)
    np.testing.assert_array_equal(y, x + 1)  # ids are their positions: targets one step on
    x2, _ = data.random_windows(ids, 4, 10, rng=0)
    np.testing.assert_array_equal(x, x2)


def test_bad_input():
    with pytest.raises(ValueError, match="max_chars to be an integer >= 1"):
        data.build_corpus(max_chars=0)
    with pytest.raises(KeyError, match="'z' is not in the vocabulary"):
        data.CharVocab("abc").encode("abz")
    with pytest.raises(ValueError, match="val_fraction"):
        data.train_val_split(np.arange(10), 1.5)
    with pytest.raises(ValueError, match="L >= length"):
        data.random_windows(np.arange(5), 2, 10, rng=0)
