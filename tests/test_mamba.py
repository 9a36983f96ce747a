"""The Mamba block and MambaLM (mamba_edu.mamba) against the official mamba_ssm and against
themselves: NumPy reference = torch module, step-by-step decode = parallel forward, the numba
kernel's gradients = autograd through a plain torch loop.

The official code runs on the CPU through ``mamba_edu.official`` (the course's one adapter),
which replaces each GPU kernel by mamba_ssm's own reference of the same function:
``selective_scan_fn`` (CUDA) → ``selective_scan_ref``; the Triton ``selective_state_update`` →
the torch code path ``Mamba.step`` takes when it is absent; the Triton ``rms_norm_fn`` →
``rms_norm_ref``. causal_conv1d is not installed, so its torch conv path runs as it is.
"""

from __future__ import annotations

import importlib
import math
import os
import types

import numpy as np
import pytest
import torch

from mamba_edu import mamba as M
from mamba_edu import official as official_mod

F32 = dict(rtol=6e-4, atol=2e-3)
F64 = dict(rtol=1e-9, atol=1e-11)


def _import_official():
    """The ONE place this file reaches mamba_ssm: through mamba_edu.official, which on a CPU
    points the block's scan at selective_scan_ref, its step at its torch branch and the norms at
    rms_norm_ref / layer_norm_ref. Returns a namespace of the official classes."""
    ok, why = official_mod.status()
    if not ok:
        if os.environ.get("CI") or os.environ.get("MAMBA_EDU_REQUIRE_PARITY") == "1":
            pytest.fail(f"the parity suite needs mamba_ssm: {why}")
        pytest.skip(why)
    block = official_mod.mamba_block()
    lm, config = official_mod.mamba_lm()
    return types.SimpleNamespace(
        Mamba=block,
        MambaLMHeadModel=lm,
        MambaConfig=config,
        simple=importlib.import_module(block.__module__),
        InferenceParams=importlib.import_module("mamba_ssm.utils.generation").InferenceParams,
    )


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These tensors are tiny: with several torch threads on a busy machine, OpenMP's spin-waits
    made the 300-token decode ~30× slower (25 s against 0.7 s measured); the numba kernel keeps
    its own threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def official():
    ns = _import_official()
    # what official promises on a CPU; were one of these a GPU kernel, the comparison would not run
    assert ns.simple.causal_conv1d_fn is None, "causal_conv1d is installed: its CUDA path would run"
    assert ns.simple.selective_scan_fn is official_mod.selective_scan_ref()
    assert ns.simple.selective_state_update is None
    return ns


def precision(dtype):
    """float64 runs the official float32-casting reference in double (see the adapter)."""
    return official_mod.keep_float64() if dtype == torch.float64 else _nothing()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def official_block(official, ours, dtype):
    theirs = official.Mamba(
        ours.d_model, d_state=ours.d_state, d_conv=ours.d_conv, expand=ours.expand,
        use_fast_path=False, layer_idx=0,
    ).to(dtype)  # fmt: skip
    theirs.load_state_dict(ours.state_dict())
    return theirs


def perturbed(module, seed):
    """Move every parameter away from its initial value (D = 1, zero biases, … would hide
    mistakes), deterministically."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def make_block(d_model, dtype, seed=0, **kwargs):
    torch.manual_seed(seed)
    return perturbed(M.Mamba(d_model, **kwargs), seed + 1).to(dtype)


SHAPES = [(d, L) for d in (16, 64) for L in (1, 3, 64)]


# ----------------------------------------------------------------------------------------------
# the block against mamba_ssm's Mamba
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d_model, L", SHAPES)
def test_block_forward_matches_official(official, d_model, L, dtype):
    ours = make_block(d_model, dtype)
    theirs = official_block(official, ours, dtype)
    hidden = torch.randn(2, L, d_model, generator=torch.Generator().manual_seed(L), dtype=dtype)
    with torch.no_grad(), precision(dtype):
        expected = theirs(hidden)
        got = ours(hidden)
    assert got.dtype == dtype
    torch.testing.assert_close(got, expected, **(F64 if dtype == torch.float64 else F32))


@pytest.mark.parametrize("d_model, L", [(16, 3), (64, 70)])
def test_block_gradients_match_official(official, d_model, L):
    """Every parameter's gradient and the input's, through our kernels (scan, conv + SiLU,
    dt_proj's backward) against autograd through mamba_ssm's slow path, in float64."""
    ours = make_block(d_model, torch.float64, seed=6)
    theirs = official_block(official, ours, torch.float64)
    gen = torch.Generator().manual_seed(L)
    hidden = torch.randn(2, L, d_model, generator=gen, dtype=torch.float64)
    weights = torch.randn(2, L, d_model, generator=gen, dtype=torch.float64)
    grads = []
    for block in (ours, theirs):
        h = hidden.clone().requires_grad_()
        with precision(torch.float64):
            (block(h) * weights).sum().backward()
        grads.append({"hidden": h.grad} | {k: p.grad for k, p in block.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name, want in grads[1].items():
        torch.testing.assert_close(grads[0][name], want, rtol=1e-9, atol=1e-11, msg=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d_model, L", SHAPES)
def test_block_prefill_and_step_match_official(official, d_model, L, dtype):
    """Prefill L tokens (L < d_conv included), then decode 5 tokens one at a time."""
    ours = make_block(d_model, dtype, seed=3)
    theirs = official_block(official, ours, dtype)
    hidden = torch.randn(2, L + 5, d_model, generator=torch.Generator().manual_seed(7), dtype=dtype)
    tol = F64 if dtype == torch.float64 else F32
    params = official.InferenceParams(max_seqlen=L + 5, max_batch_size=2)
    with torch.no_grad(), precision(dtype):
        expected = [theirs(hidden[:, :L], inference_params=params)]
        got, (conv_state, ssm_state) = ours(hidden[:, :L], return_states=True)
        got = [got]
        their_conv, their_ssm = params.key_value_memory_dict[0]
        torch.testing.assert_close(conv_state, their_conv, **tol)
        torch.testing.assert_close(ssm_state, their_ssm, **tol)
        for t in range(L, L + 5):
            params.seqlen_offset = t  # > 0: the official forward takes its step() path
            expected.append(theirs(hidden[:, t : t + 1], inference_params=params))
            out, conv_state, ssm_state = ours.step(hidden[:, t : t + 1], conv_state, ssm_state)
            got.append(out)
    torch.testing.assert_close(torch.cat(got, 1), torch.cat(expected, 1), **tol)
    torch.testing.assert_close(ssm_state, params.key_value_memory_dict[0][1], **tol)


# ----------------------------------------------------------------------------------------------
# the LM against MambaLMHeadModel
# ----------------------------------------------------------------------------------------------


def official_lm(official, ours, dtype):
    c = ours.config
    config = official.MambaConfig(
        d_model=c.d_model, n_layer=c.n_layer, vocab_size=c.vocab_size,
        ssm_cfg=dict(d_state=c.d_state, d_conv=c.d_conv, expand=c.expand, use_fast_path=False),
        rms_norm=True, fused_add_norm=False,  # the fused form is the same sum, in one Triton op
        residual_in_fp32=dtype == torch.float32,  # (it would round a float64 residual)
        pad_vocab_size_multiple=c.pad_vocab_size_multiple, tie_embeddings=True,
    )  # fmt: skip
    theirs = official.MambaLMHeadModel(config).to(dtype)
    state = {f"backbone.{k}": v for k, v in ours.state_dict().items()}
    state["lm_head.weight"] = state["backbone.embedding.weight"]
    theirs.load_state_dict(state)
    return theirs


def make_lm(d_model, dtype, vocab_size=50, n_layer=2, seed=0):
    torch.manual_seed(seed)
    config = M.MambaConfig(vocab_size=vocab_size, d_model=d_model, n_layer=n_layer)
    return perturbed(M.MambaLM(config), seed + 1).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d_model, L", SHAPES)
def test_lm_logits_and_decode_match_official(official, d_model, L, dtype):
    ours = make_lm(d_model, dtype)
    theirs = official_lm(official, ours, dtype)
    assert sum(p.numel() for p in theirs.parameters()) == ours.num_parameters()
    tokens = torch.randint(0, 50, (2, L + 4), generator=torch.Generator().manual_seed(L))
    vocab = ours.config.vocab_size
    tol = F64 if dtype == torch.float64 else F32
    params = official.InferenceParams(max_seqlen=L + 4, max_batch_size=2)
    with torch.no_grad(), precision(dtype):
        torch.testing.assert_close(
            ours(tokens), theirs(tokens).logits[..., :vocab], **tol
        )  # whole sequence, no cache
        expected = [theirs(tokens[:, :L], inference_params=params).logits[:, -1, :vocab]]
        logits, states = ours.prefill(tokens[:, :L])
        got = [logits]
        for t in range(L, L + 4):
            params.seqlen_offset = t
            expected.append(
                theirs(tokens[:, t : t + 1], inference_params=params).logits[:, -1, :vocab]
            )
            logits, states = ours.step(tokens[:, t], states)
            got.append(logits)
    torch.testing.assert_close(torch.stack(got), torch.stack(expected), **tol)


def test_lm_initialization_follows_official(official):
    """Same parameter count; the statistics _init_weights prescribes (both models at init)."""
    torch.manual_seed(0)
    config = M.MambaConfig(vocab_size=61, d_model=64, n_layer=4)
    ours = M.MambaLM(config)
    torch.manual_seed(0)
    theirs = official_lm(official, ours, torch.float32)  # same shapes, its own init replaced
    assert ours.embedding.weight.shape == (64, 64)  # 61 padded to a multiple of 8
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())
    n = config.n_layer
    bound = 1 / math.sqrt(config.d_inner) / math.sqrt(n)  # kaiming-uniform(a=√5) = U(±1/√fan_in)
    for layer in ours.layers:
        w = layer.mixer.out_proj.weight
        assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
        delta0 = torch.nn.functional.softplus(layer.mixer.dt_proj.bias)
        assert delta0.min() >= 1e-3 * (1 - 1e-6) and delta0.max() <= 1e-1 * (1 + 1e-6)
        assert delta0.max() / delta0.min() > 10  # log-uniform spread, not a constant
        rank = math.ceil(64 / 16)
        assert layer.mixer.dt_proj.weight.abs().max() <= rank**-0.5
        torch.testing.assert_close(
            torch.exp(layer.mixer.A_log), torch.arange(1.0, 17.0).expand(config.d_inner, 16)
        )
        assert torch.all(layer.mixer.D == 1)
        assert layer.mixer.conv1d.bias.abs().max() > 0  # a Conv1d: _init_weights leaves it
    assert abs(ours.embedding.weight.std().item() - 0.02) < 0.002


# ----------------------------------------------------------------------------------------------
# our implementations against one another
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("L", [1, 3, 17])
def test_numpy_reference_equals_module(L):
    block = make_block(16, torch.float64, seed=5, d_state=8)
    params = M.block_parameters(block)
    hidden = np.random.default_rng(L).standard_normal((2, L, 16))
    with torch.no_grad():
        out, (conv_state, ssm_state) = block(torch.from_numpy(hidden), return_states=True)
    ref, (ref_conv, ref_ssm) = M.block_forward_reference(hidden, params, return_states=True)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(conv_state.numpy(), ref_conv, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ssm_state.numpy(), ref_ssm, rtol=1e-12, atol=1e-13)
    # the reference's own step, token after token, from zero states
    states = (np.zeros((2, 32, 4)), np.zeros((2, 32, 8)))
    outs = []
    for t in range(L):
        o, states = M.block_step_reference(hidden[:, t], *states, params)
        outs.append(o)
    np.testing.assert_allclose(np.stack(outs, 1), ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(states[1], ref_ssm, rtol=1e-12, atol=1e-13)


def test_causal_conv_reference_against_numpy_convolve():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 9)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    got = M.causal_conv1d_reference(x, w, b)
    for i in range(2):
        for d in range(3):  # np.convolve flips the kernel: pass it reversed
            full = np.convolve(x[i, d], w[d, ::-1])[:9] + b[d]
            np.testing.assert_allclose(got[i, d], full, rtol=1e-12)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, F64), (torch.float32, F32)])
def test_decode_equals_forward_over_300_tokens(dtype, tol):
    model = make_lm(16, dtype, vocab_size=30, seed=11).eval()
    tokens = torch.randint(0, 30, (2, 300), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(tokens)
        logits, states = model.prefill(tokens[:, :1])
        got = [logits]
        for t in range(1, 300):
            logits, states = model.step(tokens[:, t], states)
            got.append(logits)
    torch.testing.assert_close(torch.stack(got, 1), expected, **tol)


def test_kernel_gradients_match_torch_fallback():
    block = make_block(16, torch.float64, seed=2)
    hidden = torch.randn(2, 12, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    weights = torch.randn(
        2, 12, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    grads = {}
    for backend in ("numba", "torch"):
        block.backend = backend
        block.zero_grad()
        h = hidden.clone().requires_grad_()
        out, (_, ssm_state) = block(h, return_states=True)
        ((out * weights).sum() + ssm_state.square().sum()).backward()
        grads[backend] = {"hidden": h.grad} | {
            k: p.grad.clone() for k, p in block.named_parameters()
        }
    assert grads["numba"].keys() == grads["torch"].keys()
    for name in grads["torch"]:
        torch.testing.assert_close(
            grads["numba"][name], grads["torch"][name], rtol=1e-9, atol=1e-11, msg=name
        )


def test_backend_auto_uses_the_kernels_by_one_rule_and_numba_refuses_what_they_cannot_take(
    monkeypatch,
):
    """The scan and the conv decide alike (selective_cpu.numba_applies): without numba, "auto"
    runs both in torch (the kernels are never called) and gives the torch backend's output, and
    "numba" refuses with the one message; a float64 conv weight in a float32 block is refused."""
    from mamba_edu.kernels import conv_cpu, selective_cpu

    block = make_block(16, torch.float32, seed=3)
    hidden = torch.randn(2, 7, 16, generator=torch.Generator().manual_seed(4))
    block.backend = "torch"
    expected = block(hidden)
    monkeypatch.setattr(selective_cpu, "HAVE_NUMBA", False)

    def never(*args, **kwargs):
        raise AssertionError("a numba kernel was called although numba is 'missing'")

    monkeypatch.setattr(conv_cpu, "causal_conv_silu", never)
    monkeypatch.setattr(selective_cpu.SelectiveScanFn, "apply", never)
    block.backend = "auto"
    torch.testing.assert_close(block(hidden), expected)
    block.backend = "numba"
    with pytest.raises(TypeError, match="numba backend needs numba installed.*numba missing"):
        block(hidden)
    monkeypatch.undo()
    block.conv1d.weight.data = block.conv1d.weight.data.double()
    with pytest.raises(TypeError, match=r"numba backend needs .*float32.*float64"):
        block(hidden)


# ----------------------------------------------------------------------------------------------
# generation and configuration
# ----------------------------------------------------------------------------------------------


def test_generate_greedy_follows_forward_argmax():
    model = make_lm(16, torch.float64, vocab_size=20, seed=4)
    out = model.generate([3, 1, 4], 12, temperature=0)
    assert out.shape == (1, 15) and out[0, :3].tolist() == [3, 1, 4]
    with torch.no_grad():
        argmax = model(out[:, :-1]).argmax(-1)  # what each position predicts, in parallel
    assert out[0, 3:].tolist() == argmax[0, 2:].tolist()


def test_generate_seeded_top_k_and_state_size():
    model = make_lm(16, torch.float32, vocab_size=20, seed=4)
    a = model.generate(torch.tensor([[1, 2], [3, 4]]), 30, temperature=1.0, top_k=3, seed=7)
    b = model.generate(torch.tensor([[1, 2], [3, 4]]), 30, temperature=1.0, top_k=3, seed=7)
    assert a.shape == (2, 32) and torch.equal(a, b)
    assert (
        model.generate([1], 1, temperature=5.0, top_k=1, seed=0)[0, 1]
        == model.generate([1], 1, temperature=0)[0, 1]
    )  # top_k = 1 leaves only the argmax
    _, states = model.prefill(torch.tensor([[1, 2]]))
    sizes = [sum(s.numel() for pair in states for s in pair)]
    for t in range(20):
        _, states = model.step(torch.tensor([t % 20]), states)
        sizes.append(sum(s.numel() for pair in states for s in pair))
    assert len(set(sizes)) == 1  # constant memory per token


def test_config_and_sizes():
    c = M.MambaConfig(vocab_size=65, d_model=40)
    assert c.padded_vocab_size == 72 and c.resolved_dt_rank == 3 and c.d_inner == 80
    assert M.MambaConfig(vocab_size=64).padded_vocab_size == 64
    model = M.MambaLM(M.MambaConfig(vocab_size=65, d_model=40, n_layer=1))
    assert model(torch.zeros(1, 5, dtype=torch.long)).shape == (1, 5, 65)


def test_bad_input_messages():
    with pytest.raises(ValueError, match="d_model to be an integer >= 1"):
        M.MambaConfig(d_model=0)
    with pytest.raises(TypeError, match="n_layer to be an integer"):
        M.MambaConfig(n_layer=2.0)
    with pytest.raises(ValueError, match="dt_min <= dt_max"):
        M.Mamba(16, dt_min=0.5, dt_max=0.1)
    with pytest.raises(ValueError, match="backend one of"):
        M.Mamba(16, backend="cuda")
    block = M.Mamba(16)
    with pytest.raises(ValueError, match=r"hidden of shape \(batch, L, d_model\)"):
        block(torch.zeros(2, 5, 8))
    with pytest.raises(TypeError, match="hidden to be a float tensor"):
        block(torch.zeros(2, 5, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="conv_state of shape"):
        block.step(torch.zeros(2, 1, 16), torch.zeros(2, 32, 3), torch.zeros(2, 32, 16))
    model = M.MambaLM(M.MambaConfig(vocab_size=10, d_model=16, n_layer=1))
    with pytest.raises(ValueError, match=r"tokens in \[0, 10\)"):
        model(torch.tensor([[1, 10]]))
    with pytest.raises(ValueError, match="temperature >= 0"):
        model.generate([1], 3, temperature=-1)
    with pytest.raises(TypeError, match="prompt to hold integer"):
        model.generate([0.5], 3)
    with pytest.raises(ValueError, match="prompt of shape"):
        model.generate([], 3)
    with pytest.raises(KeyError, match="missing"):
        M.block_forward_reference(np.zeros((1, 2, 16)), {})
