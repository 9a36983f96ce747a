"""The course's selective scan against the official implementation, mamba_ssm 2.3.2.post1.

* our NumPy reference vs its ``selective_scan_ref`` on CPU, in float64 (the official algorithm
  run in double precision, see mamba_edu/official.py) and in float32 (unchanged);
* our numba kernel vs its ``selective_scan_ref`` in float32;
* one decode step (``selective_step``) vs its Triton ``selective_state_update`` under the Triton
  interpreter, in a subprocess (TRITON_INTERPRET must be set before triton is imported).

``make test`` installs mamba_ssm; without it these tests skip, except under CI (``CI`` set) or
with MAMBA_EDU_REQUIRE_PARITY=1, where a missing mamba_ssm is a failure.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from mamba_edu.kernels import selective_cpu

from mamba_edu import official as official_mod
from mamba_edu import selective


@pytest.fixture(scope="module")
def official():
    ok, why = official_mod.status()
    if not ok:
        if os.environ.get("CI") or os.environ.get("MAMBA_EDU_REQUIRE_PARITY") == "1":
            pytest.fail(f"the parity suite needs mamba_ssm: {why}")
        pytest.skip(why)
    return official_mod.selective_scan_ref()


def make_inputs(batch, dim, length, d_state, seed, options):
    return selective.random_inputs(
        batch, dim, length, d_state, seed=seed, D="D" in options, z="z" in options,
        delta_bias="delta_bias" in options,
    )  # fmt: skip


CASES = [
    # (batch, dim, length, d_state, options, softplus)
    (2, 4, 16, 8, ("D", "z", "delta_bias"), True),
    (1, 3, 1, 4, ("D", "z", "delta_bias"), True),  # L = 1
    (2, 5, 33, 16, (), True),
    (1, 6, 20, 3, ("D",), True),
    (3, 2, 9, 5, ("z",), True),
    (2, 3, 12, 4, ("delta_bias",), True),
    (2, 4, 10, 6, ("D", "z"), False),
]


def run_official(official, args, softplus, dtype):
    tensors = {k: None if v is None else torch.tensor(v, dtype=dtype) for k, v in args.items()}
    out, last = official(*tensors.values(), delta_softplus=softplus, return_last_state=True)
    return out.numpy(), last.numpy()


def positive_delta(args, softplus):
    if not softplus:  # without softplus, Δ must be positive for exp(ΔA) to decay
        args["delta"] = np.abs(args["delta"])
        if args["delta_bias"] is not None:
            args["delta_bias"] = np.abs(args["delta_bias"])
    return args


@pytest.mark.parametrize("batch, dim, length, d_state, options, softplus", CASES)
def test_reference_matches_official_float64(
    official, batch, dim, length, d_state, options, softplus
):
    args = positive_delta(make_inputs(batch, dim, length, d_state, 1, options), softplus)
    with official_mod.keep_float64():
        out, last = run_official(official, args, softplus, torch.float64)
    assert out.dtype == np.float64 and last.dtype == np.float64
    ours, ours_last = selective.selective_scan(
        **args, delta_softplus=softplus, return_last_state=True
    )
    np.testing.assert_allclose(ours, out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours_last, last, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch, dim, length, d_state, options, softplus", CASES)
def test_reference_and_kernel_match_official_float32(
    official, batch, dim, length, d_state, options, softplus
):
    args = positive_delta(make_inputs(batch, dim, length, d_state, 2, options), softplus)
    args = {k: None if v is None else v.astype(np.float32) for k, v in args.items()}
    out, last = run_official(official, args, softplus, torch.float32)  # unchanged, float32
    assert out.dtype == np.float32
    ours, ours_last = selective.selective_scan(
        **args, delta_softplus=softplus, return_last_state=True
    )
    # float32 against float64 on the same float32 inputs: well inside rtol 6e-4 / atol 2e-3
    np.testing.assert_allclose(ours, out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours_last, last, rtol=1e-5, atol=1e-5)
    kernel, kernel_last = selective_cpu.selective_scan_fwd(**args, delta_softplus=softplus)
    assert kernel.dtype == np.float32
    np.testing.assert_allclose(kernel, out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(kernel_last, last, rtol=1e-5, atol=1e-5)


def test_official_gradients_match_numba_backward(official):
    """The official reference, differentiated by torch autograd, vs the hand-derived backward."""
    args = make_inputs(2, 5, 12, 4, 3, ("D", "z", "delta_bias"))
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in args.items()}
    with official_mod.keep_float64():
        out, last = official(*tensors.values(), delta_softplus=True, return_last_state=True)
    dout = np.random.default_rng(4).standard_normal(out.shape)
    (out * torch.tensor(dout)).sum().backward()
    grads = selective_cpu.selective_scan_bwd(dout, **args, delta_softplus=True)
    names = {"x": "dx", "delta": "ddelta", "A": "dA", "B": "dB", "C": "dC", "D": "dD", "z": "dz"}
    names["delta_bias"] = "ddelta_bias"
    for name, key in names.items():
        np.testing.assert_allclose(
            grads[key], tensors[name].grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=name
        )


DECODE_SCRIPT = """
import os, sys, json
os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported
import numpy as np, torch
from mamba_edu import official
ssu, _ = official.selective_state_update()
data = np.load(sys.argv[1])
t = {k: torch.from_numpy(data[k]) for k in data.files}
state = t["state"].clone()
out = ssu(state, t["x"], t["delta"], t["A"], t["B"], t["C"], D=t["D"], z=t["z"],
          dt_bias=t["delta_bias"], dt_softplus=True)
np.savez(sys.argv[2], out=out.numpy(), state=state.numpy())
print(json.dumps({"triton_interpret": os.environ["TRITON_INTERPRET"]}))
"""


def test_decode_step_matches_official_triton_state_update(official, tmp_path):
    rng = np.random.default_rng(5)
    batch, dim, d_state = 2, 40, 16  # 40 channels: two program blocks of 32, the second partial
    inputs = dict(
        state=rng.standard_normal((batch, dim, d_state)),
        x=rng.standard_normal((batch, dim)),
        delta=rng.uniform(-3.0, 0.5, (batch, dim)),
        A=-np.exp(rng.uniform(-1.0, 1.5, (dim, d_state))),
        B=rng.standard_normal((batch, d_state)),
        C=rng.standard_normal((batch, d_state)),
        D=rng.standard_normal(dim),
        z=rng.standard_normal((batch, dim)),
        delta_bias=rng.uniform(-1.0, 1.0, dim),
    )
    inputs = {k: v.astype(np.float32) for k, v in inputs.items()}
    np.savez(tmp_path / "inputs.npz", **inputs)
    result = subprocess.run(
        [sys.executable, "-c", DECODE_SCRIPT, str(tmp_path / "inputs.npz"),
         str(tmp_path / "official.npz")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TRITON_INTERPRET": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"triton_interpret": "1"}
    official_out = np.load(tmp_path / "official.npz")
    ours, new_state = selective.selective_step(**inputs, delta_softplus=True)
    # Triton in float32 vs our float64 on the same inputs (the official tests' float32 tolerance
    # is rtol 6e-4 / atol 2e-3)
    np.testing.assert_allclose(official_out["out"], ours, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(official_out["state"], new_state, rtol=1e-5, atol=1e-5)


def test_official_block_and_lm_run_on_cpu(official):
    """Lesson 07 compares its block and LM with these two; through the adapter they construct
    and run a forward on a CPU (the block's scan is selective_scan_ref, the norms the official
    pure-torch references)."""
    Mamba = official_mod.mamba_block()
    torch.manual_seed(0)
    block = Mamba(d_model=16, d_state=8, use_fast_path=False)
    x = torch.randn(2, 12, 16)
    y = block(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    # causal: changing the last position leaves the earlier outputs as they were
    x2 = x.clone()
    x2[:, -1] += 1.0
    torch.testing.assert_close(block(x2)[:, :-1], y[:, :-1])
    MambaLMHeadModel, MambaConfig = official_mod.mamba_lm()
    config = MambaConfig(d_model=16, n_layer=2, vocab_size=50, pad_vocab_size_multiple=8)
    lm = MambaLMHeadModel(config)
    ids = torch.randint(0, 50, (2, 10), generator=torch.Generator().manual_seed(1))
    logits = lm(ids).logits
    assert logits.shape == (2, 10, 56) and torch.isfinite(logits).all()
    # the reference RMSNorm it runs: x / sqrt(mean(x²) + eps) · weight
    norm = lm.backbone.norm_f
    h = torch.randn(3, 16)
    expected = h / torch.sqrt(h.pow(2).mean(-1, keepdim=True) + norm.eps) * norm.weight
    torch.testing.assert_close(norm(h), expected)
    # the fused add+norm path (config default) and the unfused one give the same logits
    unfused = MambaLMHeadModel(MambaConfig(**{**config.__dict__, "fused_add_norm": False}))
    unfused.load_state_dict(lm.state_dict())
    torch.testing.assert_close(unfused(ids).logits, logits, rtol=1e-5, atol=1e-5)


def test_official_says_why_when_unavailable(monkeypatch):
    def missing(name):
        raise official_mod.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(official_mod.importlib.metadata, "version", missing)
    ok, why = official_mod.status()
    assert not ok and "mamba-ssm is not installed" in why
    with pytest.raises(official_mod.Unavailable, match="not installed"):
        official_mod.selective_scan_ref()
    monkeypatch.setattr(official_mod.importlib.metadata, "version", lambda name: "2.2.0")
    assert official_mod.status() == (
        False, "mamba-ssm 2.2.0 is installed; the course pins 2.3.2.post1"
    )  # fmt: skip
