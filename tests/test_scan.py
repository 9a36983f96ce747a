import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mamba_edu import scan


def closed_form(a, b):
    """h_t = sum_k (prod_{j=k+1..t} a_j) b_k, computed without a recurrence."""
    L = a.shape[-1]
    h = np.zeros(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b, float))
    for t in range(L):
        for k in range(t + 1):
            h[..., t] += np.prod(a[..., k + 1 : t + 1], axis=-1) * b[..., k]
    return h


@settings(max_examples=30, deadline=None)
@given(
    L=st.integers(1, 12), D=st.integers(1, 3), seed=st.integers(0, 1000), complex_a=st.booleans()
)
def test_sequential_scan_matches_closed_form(L, D, seed, complex_a):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (D, L))
    if complex_a:
        a = a * np.exp(1j * rng.uniform(0, np.pi, (D, L)))
    b = rng.standard_normal((D, L))
    np.testing.assert_allclose(
        scan.sequential_scan(a, b), closed_form(a, b), rtol=1e-12, atol=1e-12
    )


def test_initial_state_is_carried():
    a = np.full((2, 5), 0.5)
    b = np.zeros((2, 5))
    h = scan.sequential_scan(a, b, h0=np.array([1.0, 2.0]))
    np.testing.assert_allclose(h[:, -1], np.array([1.0, 2.0]) * 0.5**5)


@pytest.mark.parametrize(
    "a, b, h0, message",
    [
        (np.ones(3), np.ones(4), None, "a.shape=(3,), b.shape=(4,)"),
        (np.float64(1), np.ones(4), None, "time last"),
        (np.ones((2, 3)), np.ones((2, 3)), np.ones(3), "h0 of shape (2,)"),
    ],
)
def test_bad_shapes_are_named(a, b, h0, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        scan.sequential_scan(a, b, h0)


# ----------------------------------------------------------------------------------------------
# The parallel scans (lesson 03): the same h in a different order, to float64 round-off
# ----------------------------------------------------------------------------------------------

PARALLEL = {
    "hillis_steele": scan.hillis_steele_scan,
    "blelloch": scan.blelloch_scan,
    "chunked_3": lambda a, b, h0=None, counter=None: scan.chunked_scan(a, b, h0, chunk=3),
    "chunked_8": lambda a, b, h0=None, counter=None: scan.chunked_scan(a, b, h0, chunk=8),
}


def random_inputs(rng, shape, complex_a):
    a = rng.uniform(-1, 1, shape)
    b = rng.standard_normal(shape)
    if complex_a:
        a = a * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))
        b = b + 1j * rng.standard_normal(shape)
    return a, b


@pytest.mark.parametrize("name", PARALLEL)
@settings(max_examples=15, deadline=None)
@given(
    L=st.integers(1, 40),
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    seed=st.integers(0, 10_000),
    complex_a=st.booleans(),
    with_h0=st.booleans(),
)
def test_parallel_scans_match_the_closed_form(name, L, lead, seed, complex_a, with_h0):
    rng = np.random.default_rng(seed)
    shape = (*lead, L)
    a, b = random_inputs(rng, shape, complex_a)
    h0 = rng.standard_normal(tuple(lead)) if with_h0 else None
    expected = closed_form(a, b)
    if with_h0:
        expected = expected + np.cumprod(a, axis=-1) * h0[..., None]
    got = PARALLEL[name](a, b, h0)
    assert got.shape == shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fn", [scan.sequential_scan, *PARALLEL.values()])
def test_length_zero_gives_an_empty_result(fn):
    h = fn(np.ones((2, 0)), np.ones((2, 0)))
    assert h.shape == (2, 0)


def test_operator_is_composition_of_affine_maps_and_associative():
    rng = np.random.default_rng(0)
    x, y, z = [tuple(random_inputs(rng, (50,), True)) for _ in range(3)]
    state = rng.standard_normal(50)
    # applying x ∘ y equals applying x, then y
    a, b = scan.combine(x, y)
    np.testing.assert_allclose(a * state + b, y[0] * (x[0] * state + x[1]) + y[1], rtol=1e-13)
    left = scan.combine(scan.combine(x, y), z)
    right = scan.combine(x, scan.combine(y, z))
    np.testing.assert_allclose(left, right, rtol=1e-12, atol=1e-14)
    # ...but not commutative
    assert not np.allclose(scan.combine(x, y), scan.combine(y, x))


# Cost formulas, derived by hand (not read from the code): work = operator applications,
# depth = parallel steps, for a scan of L steps without h0.
def hillis_steele_cost(L):
    offsets = [2**k for k in range(20) if 2**k < L]
    return sum(L - d for d in offsets), len(offsets)


def blelloch_cost(L):
    n = 1 << (L - 1).bit_length()
    return (2 * (n - 1), 2 * int(np.log2(n))) if n > 1 else (0, 0)


def chunked_cost(L, T):
    n_chunks = -(-L // T)
    work = n_chunks * (T - 1) + (n_chunks - 1) + (L - T if n_chunks > 1 else 0)
    depth = (T - 1) + (n_chunks - 1) + (1 if n_chunks > 1 else 0)
    return work, depth


@pytest.mark.parametrize("L", [1, 2, 3, 8, 13, 16, 100, 1024])
def test_work_and_depth_counters(L):
    assert scan.work_depth("sequential", L) == (L - 1, L - 1)
    assert scan.work_depth("hillis_steele", L) == hillis_steele_cost(L)
    assert scan.work_depth("blelloch", L) == blelloch_cost(L)
    T = max(1, int(np.ceil(np.sqrt(L))))
    assert scan.work_depth("chunked", L) == chunked_cost(L, T)
    assert scan.work_depth("chunked", L, chunk=4) == chunked_cost(L, 4)


def test_counter_records_levels_and_h0_costs_one_step():
    counter = scan.ScanCounter()
    scan.hillis_steele_scan(np.ones(8), np.ones(8), counter=counter)
    assert counter.levels == [7, 6, 4]
    with_h0 = scan.ScanCounter()
    scan.hillis_steele_scan(np.ones(8), np.ones(8), h0=0.5 * np.ones(()), counter=with_h0)
    assert (with_h0.work, with_h0.depth) == (17 + 8, 3 + 1)


def test_work_depth_rejects_unknown_method_and_empty_length():
    with pytest.raises(ValueError, match="one of"):
        scan.work_depth("bitonic", 8)
    with pytest.raises(ValueError, match="L >= 1"):
        scan.work_depth("blelloch", 0)


def test_blelloch_trace_on_eight_elements():
    trace = scan.blelloch_trace(8)
    assert [(phase, d) for phase, d, _ in trace] == [
        ("up", 1),
        ("up", 2),
        ("up", 4),
        ("down", 4),
        ("down", 2),
        ("down", 1),
    ]
    assert trace[0][2] == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert trace[2][2] == [(3, 7)]
    with pytest.raises(ValueError, match="power of two"):
        scan.blelloch_trace(12)


def test_chunked_scan_rejects_a_bad_chunk():
    with pytest.raises(ValueError, match="expected chunk to be an integer >= 1, got 0"):
        scan.chunked_scan(np.ones(4), np.ones(4), chunk=0)
    for bad in (2.5, 3.0, True, "4"):  # 3.0 too: a size is an integer, not a float
        with pytest.raises(TypeError, match="expected chunk to be an integer >= 1"):
            scan.chunked_scan(np.ones(4), np.ones(4), chunk=bad)
    assert scan.chunked_scan(np.ones(4), np.ones(4), chunk=np.int64(2)).shape == (4,)


@pytest.mark.parametrize("fn", [scan.hillis_steele_scan, scan.blelloch_scan, scan.chunked_scan])
def test_parallel_scans_name_bad_input(fn):
    with pytest.raises(ValueError, match=r"a.shape=\(3,\), b.shape=\(4,\)"):
        fn(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="numbers"):
        fn(np.array(["x", "y"]), np.ones(2))
    with pytest.raises(ValueError, match=r"h0 of shape \(2,\)"):
        fn(np.ones((2, 3)), np.ones((2, 3)), np.ones(3))


# ----------------------------------------------------------------------------------------------
# Reverse scan and the backward pass, against torch autograd of the plain loop
# ----------------------------------------------------------------------------------------------


def test_reverse_scan_reads_right_to_left():
    a = np.array([0.5, 2.0, 3.0])
    b = np.array([1.0, 1.0, 1.0])
    # a = (7, 2, 3): r_2 = 1; r_1 = 2·1 + 1 = 3; r_0 = 7·3 + 1 = 22  (a_t multiplies r_{t+1})
    np.testing.assert_allclose(scan.reverse_scan(np.array([7.0, 2.0, 3.0]), b), [22.0, 3.0, 1.0])
    # from r_3 = 2: r_2 = 3·2 + 1 = 7; r_1 = 2·7 + 1 = 15; r_0 = 0.5·15 + 1 = 8.5
    np.testing.assert_allclose(scan.reverse_scan(a, b, hT=np.array(2.0)), [8.5, 15.0, 7.0])


def torch_loop(a, b, h0):
    import torch

    state = torch.zeros_like(a[..., 0]) if h0 is None else h0
    out = []
    for t in range(a.shape[-1]):
        state = a[..., t] * state + b[..., t]
        out.append(state)
    return torch.stack(out, -1)


@settings(max_examples=30, deadline=None)
@given(
    L=st.integers(1, 20),
    D=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    complex_a=st.booleans(),
    with_h0=st.booleans(),
)
def test_scan_backward_matches_torch_autograd(L, D, seed, complex_a, with_h0):
    import torch

    rng = np.random.default_rng(seed)
    a, b = random_inputs(rng, (D, L), complex_a)
    h0 = (
        rng.standard_normal(D) + (1j * rng.standard_normal(D) if complex_a else 0)
        if with_h0
        else None
    )
    g = rng.standard_normal((D, L)) + (1j * rng.standard_normal((D, L)) if complex_a else 0)
    h = scan.sequential_scan(a, b, h0)
    da, db, dh0 = scan.scan_backward(a, h, g, h0)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    th0 = None if h0 is None else torch.tensor(h0, requires_grad=True)
    torch_loop(ta, tb, th0).backward(torch.tensor(g))
    np.testing.assert_allclose(da, ta.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-12, atol=1e-12)
    if with_h0:
        np.testing.assert_allclose(dh0, th0.grad.numpy(), rtol=1e-12, atol=1e-12)
    else:
        assert dh0 is None


def test_scan_backward_names_a_bad_gradient_shape():
    with pytest.raises(ValueError, match=r"g of shape \(2, 3\)"):
        scan.scan_backward(np.ones((2, 3)), np.ones((2, 3)), np.ones((3, 2)))
