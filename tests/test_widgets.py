"""Widgets driven headlessly: each control changes the plotted data in the expected direction."""

import ipywidgets as W
import numpy as np
import pytest

from mamba_edu import widgets


def test_harness_redraws_on_control_change():
    def draw(fig, slope):
        ax = fig.add_subplot()
        ax.plot(np.arange(5) * slope)

    handle = widgets.interactive_figure({"slope": W.FloatSlider(value=1.0, min=0, max=3)}, draw)
    before_png = handle.image.value
    np.testing.assert_allclose(handle.line_data()[0], np.arange(5.0))
    handle.controls["slope"].value = 2.0
    np.testing.assert_allclose(handle.line_data()[0], 2 * np.arange(5.0))
    assert handle.image.value != before_png
    assert handle.image.value[:8] == b"\x89PNG\r\n\x1a\n"


def test_harness_needs_controls():
    with pytest.raises(ValueError, match="at least one control"):
        widgets.interactive_figure({}, lambda fig: None)


def memory_length(h, threshold=0.05):
    """Steps after the impulse (at t = 5) for which the state stays above the threshold."""
    return int(np.sum(np.abs(h[5:]) > threshold))


def test_memory_explorer_larger_decay_remembers_longer():
    ex = widgets.memory_explorer(a=0.5)
    x, h = ex.line_data()
    assert x[5] == 1.0 and h[5] == 1.0
    lengths = []
    for a in (0.5, 0.8, 0.95):
        ex.controls["a"].value = a
        lengths.append(memory_length(ex.line_data()[1]))
    assert lengths[0] < lengths[1] < lengths[2]
    # the impulse response is a^k
    np.testing.assert_allclose(ex.line_data()[1][5:15], 0.95 ** np.arange(10))
    assert "horizon 1/(1−a) ≈ 20.0" in ex.figure.axes[0].get_title()


def test_memory_explorer_step_input_settles_at_geometric_sum():
    ex = widgets.memory_explorer(a=0.5, kind="step")
    assert ex.line_data()[1][-1] == pytest.approx(2.0)
    ex.controls["a"].value = 0.9
    assert ex.line_data()[1][-1] == pytest.approx(10.0, rel=1e-3)
    before = ex.image.value
    ex.controls["input"].value = "noise"
    assert ex.image.value != before
    assert np.std(ex.line_data()[0]) > 0.5


def test_memory_explorer_rejects_unknown_input():
    with pytest.raises(ValueError, match="impulse"):
        widgets.memory_explorer(kind="square")


# ---- lesson 01: gradient explorer --------------------------------------------------------------


def fitted_rate(norms_by_distance):
    k = np.arange(len(norms_by_distance))
    keep = (k >= len(k) // 4) & np.isfinite(norms_by_distance)
    return np.polyfit(k[keep], np.log(norms_by_distance[keep]), 1)[0]


@pytest.mark.parametrize("nonlinearity", ["identity", "tanh"])
def test_gradient_explorer_larger_radius_decays_slower(nonlinearity):
    ex = widgets.gradient_explorer(radius=0.6, nonlinearity=nonlinearity, L=80)
    rates, at_40 = [], []
    for radius in (0.6, 0.9, 1.2):
        ex.controls["radius"].value = radius
        measured, theory = ex.line_data(0)
        assert measured[0] == pytest.approx(1.0)  # distance 0: ∂h_T/∂h_T = I
        np.testing.assert_allclose(theory, radius ** np.arange(80))
        rates.append(fitted_rate(measured))
        at_40.append(measured[40])
    assert rates[0] < rates[1] < rates[2]
    assert at_40[0] < at_40[1] < at_40[2]
    if nonlinearity == "identity":  # the linear network follows ρ^k
        assert rates[2] == pytest.approx(np.log(1.2), rel=0.1)
        assert at_40[2] > 1.0 > at_40[0]


def test_gradient_explorer_nonlinearity_and_length():
    ex = widgets.gradient_explorer(radius=0.95, nonlinearity="identity", L=60)
    linear = fitted_rate(ex.line_data(0)[0])
    ex.controls["nonlinearity"].value = "tanh"  # φ' ≤ 1 can only speed the decay up
    assert fitted_rate(ex.line_data(0)[0]) < linear
    states = ex.line_data(1)
    assert len(states) == 4 and np.max(np.abs(states)) <= 1.0  # tanh states are bounded
    ex.controls["L"].value = 120
    assert len(ex.line_data(0)[0]) == 120 and len(ex.line_data(1)[0]) == 120
    ex.controls["nonlinearity"].value = "relu"
    assert np.min(ex.line_data(1)) >= 0.0
    assert "relu" in ex.figure.axes[0].get_title()


def test_gradient_explorer_rejects_unknown_nonlinearity():
    with pytest.raises(ValueError, match="nonlinearity"):
        widgets.gradient_explorer(nonlinearity="sigmoid")


# ---- lesson 02: eigenvalue explorer --------------------------------------------------------------


def steps_above(values, threshold=0.05):
    return int(np.sum(np.abs(values) > threshold))


def test_eigenvalue_explorer_magnitude_towards_one_remembers_longer():
    ex = widgets.eigenvalue_explorer(magnitude=0.5, phase=0.0)
    lengths = []
    for magnitude in (0.5, 0.8, 0.95, 0.99):
        ex.controls["magnitude"].value = magnitude
        response, envelope = ex.line_data(1)
        np.testing.assert_allclose(envelope, magnitude ** np.arange(60))
        lengths.append(steps_above(envelope))
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]
    assert "≈ 100.0 steps" in ex.figure.axes[1].get_title()
    ex.controls["magnitude"].value = 1.0
    assert "marginal" in ex.figure.axes[1].get_title()
    ex.controls["magnitude"].value = 1.02
    assert "unstable" in ex.figure.axes[1].get_title()
    assert ex.line_data(1)[1][-1] > 1.0  # grows


def test_eigenvalue_explorer_phase_sets_the_oscillation():
    ex = widgets.eigenvalue_explorer(magnitude=0.97, phase=0.0)
    sign_changes = []
    for phase in (0.0, 0.3, 1.0, 3.0):
        ex.controls["phase"].value = phase
        response = ex.line_data(1)[0]
        np.testing.assert_allclose(response, 0.97 ** np.arange(60) * np.cos(phase * np.arange(60)))
        sign_changes.append(int(np.sum(np.diff(np.sign(response)) != 0)))
    assert sign_changes[0] == 0 and sign_changes == sorted(sign_changes)
    _, spiral, pair = ex.line_data(0)[:3]
    assert pair[0] == pytest.approx(-pair[1])  # λ and its conjugate λ̄


def test_hippo_explorer_larger_state_reconstructs_better():
    ex = widgets.hippo_explorer(N=4, samples=1000)
    errors = []
    for N in (4, 16, 32):
        ex.controls["N"].value = N
        f, rec = ex.line_data()
        errors.append(np.sqrt(np.mean((f - rec) ** 2)))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05


def test_hippo_explorer_finer_sampling_helps_a_large_state():
    ex = widgets.hippo_explorer(N=64, samples=250)
    coarse = np.sqrt(np.mean(np.subtract(*ex.line_data()) ** 2))
    ex.controls["samples"].value = 2000
    fine = np.sqrt(np.mean(np.subtract(*ex.line_data()) ** 2))
    assert fine < coarse / 3
    before = ex.image.value
    ex.controls["signal"].value = "square wave"
    assert ex.image.value != before and "RMS reconstruction error" in ex.figure.axes[0].get_title()


def test_hippo_explorer_rejects_unknown_signal():
    with pytest.raises(ValueError, match="two sines"):
        widgets.hippo_explorer(signal="sawtooth")


def test_ring_explorer_closer_ring_blows_up_without_gamma_only():
    ex = widgets.ring_explorer(r_min=0.4, r_max=0.9)
    lam_r = np.hypot(*[line.get_data()[i] for line in [ex.figure.axes[0].lines[1]] for i in (0, 1)])
    assert lam_r.min() >= 0.4 - 1e-9 and lam_r.max() <= 0.9 + 1e-9
    without, with_gamma, limit = ex.line_data(1)
    ex.controls["r_max"].value = 0.999
    without2, with_gamma2, limit2 = ex.line_data(1)
    assert without2[-1] > 3 * without[-1]
    assert limit2[0] > limit[0]
    assert with_gamma2[-1] == pytest.approx(1.0, abs=0.15) and with_gamma[-1] == pytest.approx(
        1.0, abs=0.05
    )
    title = ex.figure.axes[1].get_title()
    ex.controls["r_min"].value = 0.95
    assert ex.figure.axes[1].get_title() != title  # the memory horizon grows
    before = ex.image.value
    ex.controls["max_phase"].value = 0.3
    assert ex.image.value != before


def cell_labels(handle, row):
    ax = handle.figure.axes[0]
    cells = {t.get_gid(): t.get_text() for t in ax.texts}
    n = len([g for g in cells if g.startswith("cell-0-")])
    return [cells[f"cell-{row}-{i}"] for i in range(n)]


def red_lines(handle):
    return [line for line in handle.figure.axes[0].lines if line.get_color() == "C3"]


def test_blelloch_stepper_up_sweep_builds_a_tree_of_totals():
    ex = widgets.blelloch_stepper(n=8)
    assert cell_labels(ex, 0) == [str(i) for i in range(8)]
    assert not red_lines(ex)
    ex.controls["step"].value = 1  # d = 1: four pairs, each drawn with two lines
    assert cell_labels(ex, 1) == ["0", "0–1", "2", "2–3", "4", "4–5", "6", "6–7"]
    assert len(red_lines(ex)) == 8
    ex.controls["step"].value = 3  # the root holds every step
    assert cell_labels(ex, 3)[-1] == "0–7"
    assert len(red_lines(ex)) == 2
    assert "up-sweep, d = 4" in ex.figure.axes[0].get_title()


def test_blelloch_stepper_down_sweep_ends_with_exclusive_prefixes():
    ex = widgets.blelloch_stepper(n=16)
    last = ex.controls["step"].max
    assert last == 2 * 4 + 1  # four up-sweep steps, clearing the root, four down-sweep steps
    ex.controls["step"].value = 5
    assert cell_labels(ex, 5)[-1] == "·"  # the root was cleared to the identity
    ex.controls["step"].value = last
    expected = ["·"] + ["0"] + [f"0–{t - 1}" for t in range(2, 16)]
    assert cell_labels(ex, last) == expected
    assert len(red_lines(ex)) == 3 * 8  # eight pairs, three lines each (swap and combine)
    assert "8 combine(s)" in ex.figure.axes[0].get_title()
    rows = [t.get_text() for t in ex.figure.axes[0].get_yticklabels()]
    assert rows == [
        "input",
        "up 1",
        "up 2",
        "up 4",
        "up 8",
        "clear",
        "down 8",
        "down 4",
        "down 2",
        "down 1",
    ]


def test_blelloch_stepper_rejects_bad_sizes():
    with pytest.raises(ValueError, match="4, 8 or 16"):
        widgets.blelloch_stepper(n=12)
    with pytest.raises(ValueError, match="step between 0 and 7"):
        widgets.blelloch_stepper(n=8, step=9)


def test_forgetting_explorer_large_delta_resets_tiny_delta_ignores():
    ex = widgets.forgetting_explorer(sequence="door code", delta_marked=1.0, delta_other=0.05)
    tokens = widgets.FORGETTING_SEQUENCES["door code"].split()
    marked = [i for i, w in enumerate(tokens) if w.startswith("*")]
    (delta,) = ex.line_data(0)[:1]
    assert np.allclose(delta[marked], 1.0) and np.allclose(np.delete(delta, marked), 0.05)
    (final,) = ex.line_data(1)
    assert final[marked[0]] > 1e-3  # with Δ = 1 the first digit is still in the final state
    # a huge Δ on the marked tokens: the last one resets the state, the earlier ones are lost
    ex.controls["delta_marked"].value = 30.0
    (final,) = ex.line_data(1)
    assert np.all(final[: marked[-1]] < 1e-8) and final[marked[-1]] > 1.0
    assert "marked tokens" in ex.figure.axes[1].get_title()
    # a tiny Δ on the other tokens: they are neither written nor do they erase the digits
    ex.controls["delta_marked"].value = 1.0
    ex.controls["delta_other"].value = 1e-4
    (final,) = ex.line_data(1)
    others = np.delete(final, marked)
    assert np.all(others < 2e-4) and final[marked[-1]] > 0.9
    before = ex.image.value
    ex.controls["sequence"].value = "selective copying"
    assert ex.image.value != before


def test_forgetting_explorer_rejects_unknown_sequence():
    with pytest.raises(ValueError, match="door code"):
        widgets.forgetting_explorer(sequence="lorem ipsum")


# ----------------------------------------------------------------------------------------------
# Lesson 07 — generation explorer
# ----------------------------------------------------------------------------------------------


def _tiny_lm(seed=0):
    import torch

    from mamba_edu import mamba

    torch.manual_seed(seed)
    return mamba.MambaLM(mamba.MambaConfig(vocab_size=10, d_model=16, n_layer=2, d_state=4))


def _torch_deltas(model, tokens, layer):
    """Δ of one layer computed with the torch module's own layers (independent of the widget's
    NumPy path): (d_inner, L)."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        h = model.embedding(torch.as_tensor(tokens)[None])
        for i, lay in enumerate(model.layers):
            mixer, hidden = lay.mixer, lay.norm(h)
            if i == layer:
                x = mixer.in_proj(hidden)[..., : mixer.d_inner].transpose(1, 2)
                x = F.silu(mixer.conv1d(F.pad(x, (mixer.d_conv - 1, 0))))
                dt_low = mixer.x_proj(x.transpose(1, 2))[..., : mixer.dt_rank]
                return F.softplus(mixer.dt_proj(dt_low))[0].T.double().numpy()
            h = h + mixer(hidden)


def test_generation_explorer_shows_the_models_delta_and_memory():
    model = _tiny_lm()
    tokens = np.random.default_rng(0).integers(0, 10, 20)
    chars = "abcdefghij"
    ex = widgets.generation_explorer(model, tokens, [chars[t] for t in tokens], 100, position=7)
    for layer in (0, 1):
        ex.controls["layer"].value = layer
        mean_delta = ex.line_data(0)[0]  # line 1 is the marker at the position
        assert np.allclose(mean_delta, _torch_deltas(model, tokens, layer).mean(axis=0), rtol=1e-5)
    (weights,) = ex.line_data(1)
    assert len(weights) == 8 and np.isclose(weights.sum(), 1.0) and np.all(weights > 0)
    state, kv = ex.line_data(2)[:2]  # line 2 marks the position
    d_inner = 32
    assert np.all(state == 2 * d_inner * (4 + 4) * 4)  # n_layer · d_inner · (d_conv + N) float32
    assert np.array_equal(kv, 100 * np.arange(1, 21))
    before = ex.image.value
    ex.controls["position"].value = 19
    assert ex.image.value != before and len(ex.line_data(1)[0]) == 20
    for ax in ex.figure.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and (ax.get_title() or ax.get_legend())


def test_generation_explorer_large_delta_resets_tiny_delta_keeps():
    import torch

    model = _tiny_lm(1)
    tokens = np.arange(10)
    with torch.no_grad():
        model.layers[0].mixer.dt_proj.bias.fill_(30.0)  # Δ ≈ 30: every character resets
    ex = widgets.generation_explorer(model, tokens, list("0123456789"), 1, layer=0, entry=0)
    (weights,) = ex.line_data(1)
    assert weights[-1] > 0.999
    with torch.no_grad():
        model.layers[0].mixer.dt_proj.bias.fill_(-30.0)  # Δ ≈ 1e-13: nothing is forgotten
        model.layers[0].mixer.dt_proj.weight.zero_()
    ex = widgets.generation_explorer(model, tokens, list("0123456789"), 1, layer=0, entry=0)
    (weights,) = ex.line_data(1)
    assert np.allclose(weights, 0.1, rtol=1e-6)  # equal Δ, no decay: every character counts alike


def test_generation_explorer_rejects_bad_arguments():
    model = _tiny_lm()
    with pytest.raises(ValueError, match="position"):
        widgets.generation_explorer(model, np.arange(5), list("abcde"), 1, position=5)
    with pytest.raises(ValueError, match="layer"):
        widgets.generation_explorer(model, np.arange(5), list("abcde"), 1, layer=2)
    with pytest.raises(ValueError, match="chars"):
        widgets.generation_explorer(model, np.arange(5), list("abc"), 1)


def test_chunked_kernel_trace_counts_bytes_by_the_lessons_model():
    L, chunk, threads, N, size = 10, 4, 2, 3, 4
    trace = widgets.chunked_kernel_trace(L, chunk, threads, N, size)
    assert [r["step"] for r in trace] == list(range(L + 1))
    # the chunks: 0 0 0 0 1 1 1 1 2 2; two threads of two steps each
    assert [r["chunk"] for r in trace[1:]] == [0] * 4 + [1] * 4 + [2] * 2
    assert [r["thread"] for r in trace[1:]] == [0, 0, 1, 1, 0, 0, 1, 1, 0, 0]
    n_chunks = 3
    fused_total = size * (L * (3 + 2 * N) + L + N + n_chunks * 2 * N)  # inputs, y, A, prefixes
    naive_total = size * (L * (3 + 2 * N + 1 + 6 * N) + N)
    assert trace[-1]["fused"] == fused_total and trace[-1]["naive"] == naive_total
    # a chunk's inputs cross once, when it starts: nothing more is read in the middle of a chunk
    assert trace[2]["fused"] == trace[1]["fused"]
    assert trace[5]["fused"] - trace[4]["fused"] == size * 4 * (3 + 2 * N)
    with pytest.raises(ValueError, match="multiple of threads"):
        widgets.chunked_kernel_trace(8, 4, 3)
    with pytest.raises(ValueError, match="chunk"):
        widgets.chunked_kernel_trace(8, 0, 1)


def test_chunked_kernel_stepper_moves_and_labels_every_axes():
    st = widgets.chunked_kernel_stepper(L=16, chunk=8, step=0)
    for ax in st.figure.axes:
        assert ax.get_xlabel() and ax.get_ylabel()
        assert ax.get_title() or ax.get_legend() is not None
    assert "before the first step" in st.figure.axes[0].get_title()
    st.controls["step"].value = 9
    title = st.figure.axes[0].get_title()
    assert "chunk 1" in title and "thread T0" in title
    fused, naive = st.line_data(1)
    # a new chunk's inputs were read at its first step: the fused count is ahead, then stays flat
    assert len(fused) == 10 and fused[-1] < naive[-1] and fused[-2] < fused[-1]
    before = st.image.value
    st.controls["chunk"].value = 4
    assert "chunk 2" in st.figure.axes[0].get_title()
    assert st.image.value != before
    st.controls["step"].value = 16
    fused, naive = st.line_data(1)
    assert fused[-1] == widgets.chunked_kernel_trace(16, 4, 2)[-1]["fused"]
    assert fused[-1] < naive[-1] / 2
    with pytest.raises(ValueError, match="step"):
        widgets.chunked_kernel_stepper(L=8, step=9)


def _evaluation_record():
    """A hand-made record in the shape `mamba-edu run evaluate` writes: two models, two seeds,
    an accuracy task (higher is better) and a bits-per-character task (lower is better)."""
    runs, rows = {}, []
    for i, model in enumerate(("GRU", "Mamba")):
        for task in ("mqar", "char_lm"):
            for seed in (0, 1):
                runs[f"{task} | {model} | seed {seed}"] = dict(
                    curve=dict(step=[1, 2, 3, 4], seconds=[1.0, 2.0, 3.0, 4.0],
                               loss=[4.0 - i, 3.0 - i, 2.0 - i, 1.5 - i]),
                )  # fmt: skip
        accuracies = [0.2 + 0.5 * i, 0.3 + 0.5 * i]
        bpcs = [3.0 - i, 3.2 - i]  # Mamba's are lower: better
        for task, metric, scores in (("mqar", "accuracy", accuracies), ("char_lm", "bpc", bpcs)):
            row = dict(
                task=task, model=model, metric=metric, higher_is_better=metric == "accuracy",
                params=1000 + i, state=64, steps=4, chance=0.1 if metric == "accuracy" else 6.5,
                scores=scores, score=float(np.mean(scores)), min_score=min(scores),
                max_score=max(scores),
            )  # fmt: skip
            if metric == "bpc":
                row["baselines"] = dict(unigram_bpc=4.9, bigram_bpc=3.9)
            rows.append(row)
    return dict(tasks=["mqar", "char_lm"], seeds=[0, 1], rows=rows, runs=runs)


def test_results_explorer_budget_cuts_the_curves_and_accuracy_shows_each_seed():
    ex = widgets.results_explorer(_evaluation_record())
    lines = ex.line_data()
    assert len(lines) == 4  # two models × two seeds
    np.testing.assert_allclose(lines[0], [4.0, 3.0, 2.0, 1.5])
    ex.controls["budget"].value = 0.5  # half of 4 s: the points at 1 s and 2 s
    np.testing.assert_allclose(ex.line_data()[2], [3.0, 2.0])
    assert "Mamba 2.00" in ex.figure.axes[0].get_title()
    ex.controls["model"].value = "GRU"
    assert len(ex.line_data()) == 2
    ex.controls["metric"].value = "score per seed"
    accuracy, chance = ex.line_data()
    np.testing.assert_allclose(accuracy, [0.2, 0.3])
    np.testing.assert_allclose(chance, [0.1, 0.1])
    ax = ex.figure.axes[0]
    assert ax.get_xlabel() and "accuracy (higher is better)" in ax.get_ylabel()
    ex.controls["model"].value = "all"
    assert "Mamba" in ex.figure.axes[0].get_title()  # the best: the higher accuracy


def test_results_explorer_shows_bits_per_character_lower_is_better_with_the_baselines():
    ex = widgets.results_explorer(_evaluation_record(), task="char_lm", metric="score per seed")
    gru, mamba, uniform, unigram, bigram = ex.line_data()
    np.testing.assert_allclose(gru, [3.0, 3.2])
    np.testing.assert_allclose(mamba, [2.0, 2.2])
    np.testing.assert_allclose([uniform[0], unigram[0], bigram[0]], [6.5, 4.9, 3.9])
    ax = ex.figure.axes[0]
    assert "bits per character (lower is better)" in ax.get_ylabel()
    # the best model is the one with the *lower* bpc, and its row is in the title
    assert ax.get_title().startswith("char_lm — Mamba") and "bpc 2.100" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["GRU", "Mamba", "uniform guess", "unigram", "bigram"]
    ex.controls["metric"].value = "training loss"
    assert "nats per character" in ex.figure.axes[0].get_ylabel()


def test_results_explorer_rejects_what_the_record_lacks():
    record = _evaluation_record()
    with pytest.raises(ValueError, match="task of the record"):
        widgets.results_explorer(record, task="listops")
    with pytest.raises(ValueError, match="model 'all' or one of"):
        widgets.results_explorer(record, model="LSTM")
    with pytest.raises(ValueError, match="budget"):
        widgets.results_explorer(record, budget=2.0)
    with pytest.raises(ValueError, match="record of `mamba-edu run evaluate`"):
        widgets.results_explorer({"rows": []})
    for row in record["rows"]:
        del row["metric"]  # a record written before rows named their metric
    with pytest.raises(ValueError, match="every row to name its metric"):
        widgets.results_explorer(record)
