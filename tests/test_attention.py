import numpy as np
import pytest
import torch

from mamba_edu import attention
from mamba_edu.mamba import MambaConfig, MambaLM


def loop_attention(q, k, v):
    """Row by row, with Python floats: an independent check of the vectorized version."""
    L, d = q.shape
    out = np.zeros_like(v)
    for t in range(L):
        scores = [float(q[t] @ k[s]) / d**0.5 for s in range(t + 1)]
        m = max(scores)
        w = [np.exp(s - m) for s in scores]
        out[t] = sum(wi * v[s] for s, wi in enumerate(w)) / sum(w)
    return out


@pytest.mark.parametrize("L, d", [(1, 3), (7, 4), (16, 2)])
def test_matches_loop(L, d):
    q, k, v = np.random.default_rng(L).standard_normal((3, L, d))
    np.testing.assert_allclose(
        attention.causal_attention(q, k, v), loop_attention(q, k, v), rtol=1e-12
    )


def test_large_scores_stay_finite():
    q = np.full((4, 2), 100.0)
    out = attention.causal_attention(q, q, np.ones((4, 2)))
    assert np.all(np.isfinite(out))


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"expected q and k of shape \(L, d\)"):
        attention.causal_attention(np.ones((3, 2)), np.ones((4, 2)), np.ones((3, 2)))


# ----------------------------------------------------------------------------------------------
# TransformerLM, the baseline of lesson 07
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: several torch threads spin-wait on a busy machine (see test_mamba.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_lm(positions="learned", dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    config = attention.TransformerConfig(
        vocab_size=23, d_model=16, n_layer=2, n_head=4, max_len=64, positions=positions
    )
    return attention.TransformerLM(config).to(dtype).eval()


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_kv_cache_decode_equals_full_forward(positions, one_torch_thread):
    model = small_lm(positions)
    tokens = torch.randint(0, 23, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(tokens)
        logits, cache = model.prefill(tokens[:, :5])
        got = [logits]
        for t in range(5, 40):
            logits, cache = model.step(tokens[:, t], cache)
            got.append(logits)
    torch.testing.assert_close(torch.stack(got, 1), expected[:, 4:], rtol=1e-10, atol=1e-12)
    assert cache["layers"][0][0].shape == (2, 4, 40, 4)  # the cache grew to every position


def test_causal_future_tokens_do_not_change_the_past(one_torch_thread):
    model = small_lm()
    a = torch.randint(0, 23, (1, 30), generator=torch.Generator().manual_seed(2))
    b = a.clone()
    b[0, 17:] = (b[0, 17:] + 5) % 23
    with torch.no_grad():
        la, lb = model(a), model(b)
    torch.testing.assert_close(la[:, :17], lb[:, :17], rtol=1e-12, atol=1e-12)
    assert (la[:, 17] - lb[:, 17]).abs().max() > 1e-3  # the changed position does see it


def test_attention_layer_equals_numpy_reference_per_head(one_torch_thread):
    model = small_lm()
    layer = model.layers[0]
    h = torch.randn(1, 9, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        q, k, v = (layer._heads(t) for t in layer.qkv(layer.ln1(h)).chunk(3, dim=-1))
        out, _ = layer(h)
        heads = [attention.causal_attention(q[0, i].numpy(), k[0, i].numpy(), v[0, i].numpy())
                 for i in range(4)]  # fmt: skip
        attn = torch.from_numpy(np.concatenate(heads, axis=1))[None]
        mlp_in = h + layer.proj(attn)
        expected = mlp_in + layer.fc_out(torch.nn.functional.gelu(layer.fc(layer.ln2(mlp_in))))
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("d_model, n_layer", [(64, 2), (128, 4)])
def test_matched_transformer_parameter_count(d_model, n_layer, one_torch_thread):
    mamba_lm = MambaLM(MambaConfig(vocab_size=97, d_model=d_model, n_layer=n_layer))
    model = attention.matched_transformer(mamba_lm, max_len=256)
    counted = sum(p.numel() for p in model.parameters())  # tied head counted once
    assert abs(counted - mamba_lm.num_parameters()) <= 0.05 * mamba_lm.num_parameters()
    assert counted == attention.transformer_parameter_count(model.config)
    assert model.config.n_layer == n_layer and model.config.vocab_size == 97


def test_generate_same_signature_greedy_and_seeded(one_torch_thread):
    model = small_lm(dtype=torch.float32)
    out = model.generate([1, 2, 3], 10, temperature=0)
    with torch.no_grad():
        predicted = model(out[:, :-1]).argmax(-1)
    assert out.shape == (1, 13) and out[0, 3:].tolist() == predicted[0, 2:].tolist()
    a = model.generate([[1, 2], [3, 4]], 8, temperature=0.8, top_k=5, seed=3)
    assert torch.equal(a, model.generate([[1, 2], [3, 4]], 8, temperature=0.8, top_k=5, seed=3))


def test_transformer_bad_input(one_torch_thread):
    with pytest.raises(ValueError, match="d_model divisible by n_head"):
        attention.TransformerConfig(d_model=10, n_head=4)
    with pytest.raises(ValueError, match="positions one of"):
        attention.TransformerConfig(positions="rotary")
    model = small_lm()
    with pytest.raises(ValueError, match="at most max_len = 64"):
        model(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match=r"tokens in \[0, 23\)"):
        model(torch.tensor([[0, 23]]))
    with pytest.raises(TypeError, match="expected mamba to be a MambaLM"):
        attention.matched_transformer(model)
