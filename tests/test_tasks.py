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


# ---- lesson 09's tasks ---------------------------------------------------------------------


def _evaluate_listops(text: str) -> int:
    """An evaluator written independently of the generator: a stack of open brackets, each
    holding its operator and the values seen so far; the median by sorting."""
    stack = []
    result = None
    for symbol in text.split():
        if symbol.startswith("["):
            stack.append((symbol, []))
        elif symbol == "]":
            op, values = stack.pop()
            ordered = sorted(values)
            middle = len(ordered) // 2
            value = {
                "[MIN": ordered[0],
                "[MAX": ordered[-1],
                "[SM": sum(values) % 10,
                "[MED": ordered[middle]
                if len(ordered) % 2
                else (ordered[middle - 1] + ordered[middle]) // 2,
            }[op]
            if stack:
                stack[-1][1].append(value)
            else:
                result = value
        else:
            stack[-1][1].append(int(symbol))
    assert not stack, f"unclosed bracket in {text!r}"
    return result


def test_the_independent_listops_evaluator_on_hand_worked_examples():
    assert _evaluate_listops("[MAX 2 9 [MIN 4 7 ] 0 ]") == 9
    assert _evaluate_listops("[MED 1 2 3 4 ]") == 2  # median 2.5, truncated as LRA's int()
    assert _evaluate_listops("[MED 3 1 2 ]") == 2
    assert _evaluate_listops("[SM 9 9 [SM 5 6 ] ]") == 9  # 9 + 9 + 1 = 19


def test_listops_labels_match_an_independent_evaluator():
    tokens, labels = tasks.listops(300, max_length=48, min_length=20, max_depth=5, seed=3)
    assert tokens.shape == (300, 48) and labels.shape == (300,)
    for row, label in zip(tokens, labels, strict=True):
        text = tasks.listops_text(row)
        assert 20 <= len(text.split()) <= 48
        assert _evaluate_listops(text) == label, text
    # left padding: the expression ends at the last position, so a model reads the answer there
    assert (tokens[:, -1] == tasks.LISTOPS_VOCAB - 1).all()
    assert set(np.unique(labels)) == set(range(10))
    nested = sum(tasks.listops_text(row).count("[") > 1 for row in tokens)
    assert nested > 250  # min_length 20 forces most expressions to nest


def test_listops_is_deterministic_per_seed():
    a = tasks.listops(50, seed=7)
    b = tasks.listops(50, seed=7)
    c = tasks.listops(50, seed=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_listops_rejects_bad_settings():
    with pytest.raises(ValueError, match="max_args >= 2"):
        tasks.listops(4, max_args=1)
    with pytest.raises(ValueError, match="min_length"):
        tasks.listops(4, max_length=10, min_length=11)
    with pytest.raises(ValueError, match="p_operator"):
        tasks.listops(4, p_operator=1.0)
    with pytest.raises(ValueError, match="ids in 0"):
        tasks.listops_text(np.array([99]))


def test_induction_heads_label_follows_the_first_trigger():
    vocab = 6
    tokens, labels = tasks.induction_heads(500, 20, vocab=vocab, seed=1)
    assert tokens.shape == (500, 20) and labels.shape == (500,)
    for row, label in zip(tokens, labels, strict=True):
        where = np.flatnonzero(row == vocab)
        assert len(where) == 2 and where[1] == 19 and where[0] <= 17
        assert row[where[0] + 1] == label != vocab
    assert set(np.unique(labels)) == set(range(vocab))
    again = tasks.induction_heads(500, 20, vocab=vocab, seed=1)
    assert np.array_equal(tokens, again[0]) and np.array_equal(labels, again[1])
    with pytest.raises(ValueError, match="L >= 3"):
        tasks.induction_heads(4, 2)


def test_long_copy_is_the_string_then_its_teacher_forced_copy():
    tokens, labels = tasks.long_copy(40, 7, vocab=5, seed=2)
    assert tokens.shape == (40, 14) and labels.shape == (40, 7)
    assert (tokens[:, 7] == 5).all() and tokens[:, :7].max() < 5
    # answered at the last 7 positions: at the separator the first token, then each next one
    for row, label in zip(tokens, labels, strict=True):
        assert list(row[:7]) == list(label)
        assert list(row[8:]) == list(label[:-1])
    assert np.array_equal(tokens, tasks.long_copy(40, 7, vocab=5, seed=2)[0])
    with pytest.raises(ValueError, match="length >= 1"):
        tasks.long_copy(4, 0)


def test_mqar_labels_are_the_values_stored_with_each_query():
    vocab, pairs = 20, 6
    tokens, labels = tasks.mqar(300, pairs, vocab=vocab, seed=5)
    assert tokens.shape == (300, 18) and labels.shape == (300, 6)
    for row, label in zip(tokens, labels, strict=True):
        memory = dict(zip(row[0:12:2], row[1:12:2], strict=True))
        assert len(memory) == pairs and len(set(memory.values())) == pairs  # all different
        assert all(k < vocab // 2 <= v < vocab for k, v in memory.items())
        assert sorted(row[12:]) == sorted(memory)  # each key asked once
        assert [memory[q] for q in row[12:]] == list(label)
    assert np.array_equal(tokens, tasks.mqar(300, pairs, vocab=vocab, seed=5)[0])
    with pytest.raises(ValueError, match="vocab >= 2 \\* n_pairs"):
        tasks.mqar(4, 11, vocab=20)
