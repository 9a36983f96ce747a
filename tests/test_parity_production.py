"""The course's references against mamba_ssm's production Triton kernels, run on a CPU by the
Triton interpreter (mamba_ssm 2.3.2.post1, reached only through ``mamba_edu.official``):

* ``mamba_chunk_scan_combined``, Mamba-2's training kernel (SSD), forward and backward, against a
  plain float64 torch loop written here (the recurrence h_t = exp(Δ_t A) h_{t−1} + Δ_t x_t B_tᵀ
  per head) and its torch autograd gradients;
* ``ssd_minimal_discrete`` (the Mamba-2 paper's Listing 1, pure torch) against the same loop;
* ``selective_state_update`` (Mamba's decode step) run for several tokens, carrying its state,
  against the NumPy reference ``selective_scan`` over the same sequence;
* the fused ``rms_norm_fn`` / ``layer_norm_fn`` (with a residual, prenorm) against plain formulas,
  forward and gradients.

Tolerances: float32 kernels against float64 references at the official float32 tolerance (rtol
6e-4, atol 2e-3; for gradients atol scaled by the gradient's largest entry) or tighter.

Everything official runs in one subprocess (TRITON_INTERPRET must be set before triton is
imported, and this process may have imported it); it writes its results for this process to
compare. Without mamba_ssm these tests skip, except under CI or MAMBA_EDU_REQUIRE_PARITY=1.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mamba_edu import official, selective

RTOL, ATOL = 6e-4, 2e-3  # the official float32 tolerance

# Mamba-2 shapes: x (batch, L, heads, head_dim), dt (batch, L, heads), A (heads,),
# B, C (batch, L, groups, N). Three chunks of 16, the last one partial; two heads per group.
SSD = dict(batch=2, length=40, heads=4, head_dim=4, groups=2, d_state=8, chunk=16)
SSD_MINIMAL = dict(batch=2, length=32, heads=3, head_dim=4, d_state=5, block=8)
DECODE = dict(batch=2, dim=40, length=6, d_state=16)  # 40 channels: a partial second block
NORM_ROWS, NORM_WIDTH = 6, 48


def ssd_inputs():
    rng = np.random.default_rng(11)
    b, L, H, P, G, N = (
        SSD[k] for k in ("batch", "length", "heads", "head_dim", "groups", "d_state")
    )
    return {
        "x": rng.standard_normal((b, L, H, P)),
        "dt": rng.uniform(-3.0, 0.5, (b, L, H)),
        "A": -np.exp(rng.uniform(-1.0, 1.0, H)),
        "B": rng.standard_normal((b, L, G, N)),
        "C": rng.standard_normal((b, L, G, N)),
        "D": rng.standard_normal(H),
        "z": rng.standard_normal((b, L, H, P)),
        "dt_bias": rng.uniform(-1.0, 1.0, H),
        "dout": rng.standard_normal((b, L, H, P)),
        "dfinal": rng.standard_normal((b, H, P, N)),
    }


def ssd_minimal_inputs():
    rng = np.random.default_rng(12)
    b, L, H, P, N = (SSD_MINIMAL[k] for k in ("batch", "length", "heads", "head_dim", "d_state"))
    return {
        "x": rng.standard_normal((b, L, H, P)),
        "a": -rng.uniform(0.01, 1.0, (b, L, H)),  # Δ·A per step: the log of the decay
        "B": rng.standard_normal((b, L, H, N)),
        "C": rng.standard_normal((b, L, H, N)),
    }


def decode_inputs():
    args = selective.random_inputs(
        DECODE["batch"], DECODE["dim"], DECODE["length"], DECODE["d_state"], seed=13
    )
    return {k: v.astype(np.float32) for k, v in args.items()}


def norm_inputs():
    rng = np.random.default_rng(14)
    shape = (NORM_ROWS, NORM_WIDTH)
    return {
        "x": rng.standard_normal(shape),
        "residual": rng.standard_normal(shape),
        "weight": 1.0 + 0.1 * rng.standard_normal(NORM_WIDTH),
        "bias": 0.1 * rng.standard_normal(NORM_WIDTH),
        "dout": rng.standard_normal(shape),
        "dres": rng.standard_normal(shape),
    }


SCRIPT = """
import os, sys, json
os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported
import numpy as np, torch
from mamba_edu import official
folder = sys.argv[1]
results = {}

def leaf(a, dtype=torch.float32):
    return torch.tensor(a, dtype=dtype, requires_grad=True)

# Mamba-2's training kernel, forward and backward (float32)
data = dict(np.load(f"{folder}/ssd.npz"))
chunk = int(data.pop("chunk"))
dout, dfinal = (torch.tensor(data.pop(k), dtype=torch.float32) for k in ("dout", "dfinal"))
t = {k: leaf(v) for k, v in data.items()}
combined = official.mamba_chunk_scan_combined()
out, final = combined(t["x"], t["dt"], t["A"], t["B"], t["C"], chunk, D=t["D"], z=t["z"],
                      dt_bias=t["dt_bias"], dt_softplus=True, return_final_states=True)
((out * dout).sum() + (final * dfinal).sum()).backward()
np.savez(f"{folder}/ssd_out.npz", out=out.detach().numpy(), final=final.detach().numpy(),
         **{"d" + k: v.grad.numpy() for k, v in t.items()})

# the paper's minimal SSD, in float64 (pure torch)
data = dict(np.load(f"{folder}/minimal.npz"))
block = int(data.pop("block"))
m = {k: torch.from_numpy(v) for k, v in data.items()}
y, final = official.ssd_minimal_discrete()(m["x"], m["a"], m["B"], m["C"], block)
np.savez(f"{folder}/minimal_out.npz", y=y.numpy(), final=final.numpy())

# Mamba's decode step, token after token, carrying the state (float32)
data = dict(np.load(f"{folder}/decode.npz"))
update, _ = official.selective_state_update()
d = {k: torch.from_numpy(v) for k, v in data.items()}
state = torch.zeros(d["x"].shape[0], d["x"].shape[1], d["A"].shape[1])
outs = []
for step in range(d["x"].shape[2]):
    outs.append(update(state, d["x"][..., step], d["delta"][..., step], d["A"],
                       d["B"][..., step], d["C"][..., step], D=d["D"], z=d["z"][..., step],
                       dt_bias=d["delta_bias"], dt_softplus=True))
np.savez(f"{folder}/decode_out.npz", out=torch.stack(outs, -1).numpy(), state=state.numpy())

# the fused norms (float32): plain, and with a residual added first (prenorm: both returned)
data = dict(np.load(f"{folder}/norm.npz"))
layer_norm_fn, rms_norm_fn = official.norm_kernels()
saved = {}
for name, fn, has_bias in (("rms", rms_norm_fn, False), ("layer", layer_norm_fn, True)):
    for with_residual in (False, True):
        n = {k: leaf(data[k]) for k in ("x", "residual", "weight", "bias")}
        bias = n["bias"] if has_bias else None
        if with_residual:
            out, res = fn(n["x"], n["weight"], bias, residual=n["residual"], eps=1e-6,
                          prenorm=True)
            loss = (out * torch.from_numpy(data["dout"]).float()).sum()
            loss = loss + (res * torch.from_numpy(data["dres"]).float()).sum()
        else:
            out = fn(n["x"], n["weight"], bias, eps=1e-6)
            loss = (out * torch.from_numpy(data["dout"]).float()).sum()
        loss.backward()
        key = f"{name}_{int(with_residual)}"
        saved[key + "_out"] = out.detach().numpy()
        for k in ("x", "weight", "bias", "residual"):
            if n[k].grad is not None:
                saved[f"{key}_d{k}"] = n[k].grad.numpy()
np.savez(f"{folder}/norm_out.npz", **saved)
print(json.dumps({"triton_interpret": os.environ["TRITON_INTERPRET"]}))
"""


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    ok, why = official.status()
    if not ok:
        if os.environ.get("CI") or os.environ.get("MAMBA_EDU_REQUIRE_PARITY") == "1":
            pytest.fail(f"the parity suite needs mamba_ssm: {why}")
        pytest.skip(why)
    folder = tmp_path_factory.mktemp("production")
    np.savez(folder / "ssd.npz", chunk=SSD["chunk"], **ssd_inputs())
    np.savez(folder / "minimal.npz", block=SSD_MINIMAL["block"], **ssd_minimal_inputs())
    np.savez(folder / "decode.npz", **decode_inputs())
    np.savez(folder / "norm.npz", **norm_inputs())
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder)],
        capture_output=True, text=True, timeout=900, env={**os.environ, "TRITON_INTERPRET": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"triton_interpret": "1"}
    names = ("ssd_out", "minimal_out", "decode_out", "norm_out")
    return {name: dict(np.load(folder / f"{name}.npz")) for name in names}


def sequential_heads(x, dt, A, B, C, D=None, z=None):
    """The multi-head recurrence one step at a time, in torch (autograd works through it).

    x (batch, L, heads, head_dim); dt (batch, L, heads), already Δ (after bias and softplus);
    A (heads,); B, C (batch, L, groups, N), groups dividing heads (head h reads group
    h // (heads / groups)); D (heads,); z like x. Per head: h_t = exp(Δ_t A) h_{t−1} +
    Δ_t x_t B_tᵀ, (head_dim, N); y_t = h_t C_t + D x_t; out = y · silu(z).
    Returns (out, the last state (batch, heads, head_dim, N))."""
    heads, groups = x.shape[2], B.shape[2]
    B = B.repeat_interleave(heads // groups, dim=2)  # (batch, L, heads, N)
    C = C.repeat_interleave(heads // groups, dim=2)
    h = x.new_zeros(x.shape[0], heads, x.shape[3], B.shape[3])
    ys = []
    for t in range(x.shape[1]):
        decay = torch.exp(dt[:, t] * A)[:, :, None, None]  # (batch, heads, 1, 1)
        h = decay * h + (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", h, C[:, t]))
    y = torch.stack(ys, dim=1)
    if D is not None:
        y = y + D[:, None] * x
    if z is not None:
        y = y * F.silu(z)
    return y, h


def assert_grad_close(got, expected, name):
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * scale, err_msg=name)


def test_sequential_reference_matches_the_numpy_selective_scan():
    """The loop above, with one channel per head (head_dim 1, one group per head), is the
    course's selective scan: checked before it serves as the yardstick."""
    args = selective.random_inputs(2, 3, 11, 4, seed=15, D=True, z=True, delta_bias=False)
    delta = F.softplus(torch.from_numpy(args["delta"]))  # (batch, D, L)
    x, z = (torch.from_numpy(args[k]).transpose(1, 2)[..., None] for k in ("x", "z"))
    A = torch.from_numpy(args["A"][:, 0])  # one decay per head
    args["A"] = np.repeat(args["A"][:, :1], 4, axis=1)  # the same A for every n
    # per head its own B and C: (batch, L, heads, N) with the selective scan's shared B, C
    B, C = (torch.from_numpy(args[k]).transpose(1, 2)[:, :, None].expand(-1, -1, 3, -1)
            for k in ("B", "C"))  # fmt: skip
    out, _ = sequential_heads(x, delta.transpose(1, 2), A, B, C, torch.from_numpy(args["D"]), z)
    expected = selective.selective_scan(**args, delta_softplus=True)
    np.testing.assert_allclose(
        out[..., 0].transpose(1, 2).numpy(), expected, rtol=1e-12, atol=1e-12
    )


def test_chunk_scan_combined_forward_matches_the_sequential_scan(production):
    inputs = ssd_inputs()
    t = {k: torch.from_numpy(v) for k, v in inputs.items()}
    dt = F.softplus(t["dt"] + t["dt_bias"])
    out, final = sequential_heads(t["x"], dt, t["A"], t["B"], t["C"], t["D"], t["z"])
    got = production["ssd_out"]
    np.testing.assert_allclose(got["out"], out.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got["final"], final.numpy(), rtol=RTOL, atol=ATOL)


def test_chunk_scan_combined_backward_matches_autograd(production):
    inputs = ssd_inputs()
    dout, dfinal = (torch.from_numpy(inputs.pop(k)) for k in ("dout", "dfinal"))
    t = {k: torch.tensor(v, requires_grad=True) for k, v in inputs.items()}
    dt = F.softplus(t["dt"] + t["dt_bias"])
    out, final = sequential_heads(t["x"], dt, t["A"], t["B"], t["C"], t["D"], t["z"])
    ((out * dout).sum() + (final * dfinal).sum()).backward()
    got = production["ssd_out"]
    for name, tensor in t.items():
        assert_grad_close(got["d" + name], tensor.grad.numpy(), f"d{name}")


def test_ssd_minimal_matches_the_sequential_scan(production):
    """Listing 1 takes the input already multiplied by Δ and the log-decay a = Δ·A per step:
    h_t = exp(a_t) h_{t−1} + X_t B_tᵀ, y_t = h_t C_t (per head, float64)."""
    m = {k: torch.from_numpy(v) for k, v in ssd_minimal_inputs().items()}
    batch, length, heads, head_dim = m["x"].shape
    h = torch.zeros(batch, heads, head_dim, m["B"].shape[3], dtype=torch.float64)
    ys = []
    for t in range(length):
        h = (
            torch.exp(m["a"][:, t])[..., None, None] * h
            + m["x"][:, t, :, :, None] * m["B"][:, t, :, None]
        )
        ys.append(torch.einsum("bhpn,bhn->bhp", h, m["C"][:, t]))
    got = production["minimal_out"]
    np.testing.assert_allclose(got["y"], torch.stack(ys, 1).numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got["final"], h.numpy(), rtol=1e-10, atol=1e-10)


def test_decode_steps_match_the_numpy_scan(production):
    args = decode_inputs()
    out, last = selective.selective_scan(**args, delta_softplus=True, return_last_state=True)
    got = production["decode_out"]
    # float32 kernel, float64 reference on the same float32 inputs: tighter than the official
    np.testing.assert_allclose(got["out"], out, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got["state"], last, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["rms", "layer"])
@pytest.mark.parametrize("with_residual", [False, True])
def test_fused_norms_match_the_formula(production, kind, with_residual):
    data = norm_inputs()
    t = {k: torch.tensor(data[k], requires_grad=True) for k in ("x", "residual", "weight", "bias")}
    x = t["x"] + t["residual"] if with_residual else t["x"]
    eps = 1e-6
    if kind == "rms":  # x / sqrt(mean(x²) + eps) · weight
        out = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * t["weight"]
    else:  # (x − mean) / sqrt(var + eps) · weight + bias, the biased variance
        centred = x - x.mean(-1, keepdim=True)
        out = centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + eps) * t["weight"]
        out = out + t["bias"]
    loss = (out * torch.from_numpy(data["dout"])).sum()
    if with_residual:
        loss = loss + (x * torch.from_numpy(data["dres"])).sum()
    loss.backward()
    got = production["norm_out"]
    key = f"{kind}_{int(with_residual)}"
    np.testing.assert_allclose(got[key + "_out"], out.detach().numpy(), rtol=1e-4, atol=1e-4)
    names = ["x", "weight"] + (["bias"] if kind == "layer" else [])
    names += ["residual"] if with_residual else []
    for name in names:
        assert_grad_close(got[f"{key}_d{name}"], t[name].grad.numpy(), f"{key} d{name}")
