"""Interactive figures: one builder per widget, each returning a handle that tests can drive.

Every widget is an :class:`InteractiveFigure`: a dict of ipywidgets ``controls``, a matplotlib
``figure`` redrawn by a ``draw(figure, **values)`` function whenever a control moves, and an
``ipywidgets.Image`` showing the rendered PNG. Rendering to an image (rather than relying on a
matplotlib backend) behaves the same in JupyterLab, in a headless test and in a browser test: a
test sets ``handle.controls["a"].value = 0.9`` and reads ``handle.line_data()`` or
``handle.image.value`` to see what changed.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as W
import numpy as np
from matplotlib.figure import Figure

from mamba_edu import lru, rnn, ssm
from mamba_edu.linear_rnn import impulse_response, memory_horizon
from mamba_edu.scan import blelloch_trace, sequential_scan
from mamba_edu.selective import influence

__all__ = [
    "InteractiveFigure",
    "interactive_figure",
    "memory_explorer",
    "blelloch_stepper",
    "gradient_explorer",
    "eigenvalue_explorer",
    "hippo_explorer",
    "ring_explorer",
    "forgetting_explorer",
    "generation_explorer",
    "chunked_kernel_trace",
    "chunked_kernel_stepper",
    "results_explorer",
]


@dataclass
class InteractiveFigure:
    """Controls, the figure they drive, and the displayed widget (``ui``)."""

    controls: dict[str, W.ValueWidget]
    figure: Figure
    image: W.Image
    ui: W.Widget
    draw: Callable[..., None]

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self) -> None:
        """Draw the figure for the current control values and show it."""
        self.figure.clear()
        self.draw(self.figure, **self.values())
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=80)
        self.image.value = buf.getvalue()

    def line_data(self, ax: int = 0) -> list[np.ndarray]:
        """The y-data of every line on axes number ``ax``, in drawing order."""
        return [np.asarray(line.get_ydata(), dtype=float) for line in self.figure.axes[ax].lines]

    def _repr_mimebundle_(self, **kwargs):
        # The live view for JupyterLab, plus the current picture for everything that cannot run
        # widgets (a static page of the course, nbconvert, a plain terminal's display).
        bundle = self.ui._repr_mimebundle_(**kwargs)
        bundle["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        return bundle


def interactive_figure(
    controls: dict[str, W.ValueWidget],
    draw: Callable[..., None],
    *,
    figsize: tuple[float, float] = (8.0, 3.2),
    layout: str = "above",
) -> InteractiveFigure:
    """Wire ``controls`` to ``draw(figure, **values)``; return the handle, already drawn once.

    ``layout`` puts the controls ``"above"`` or ``"left"`` of the figure.
    """
    if not controls:
        raise ValueError("expected at least one control")
    figure = Figure(figsize=figsize, layout="constrained")
    image = W.Image(format="png", layout=W.Layout(max_width="100%"))
    box = W.VBox(list(controls.values())) if layout == "left" else W.HBox(list(controls.values()))
    ui = W.HBox([box, image]) if layout == "left" else W.VBox([box, image])
    handle = InteractiveFigure(controls, figure, image, ui, draw)
    for control in controls.values():
        control.observe(lambda change: handle.redraw(), names="value")
    handle.redraw()
    return handle


# ----------------------------------------------------------------------------------------------
# Lesson 00 — how long does a recurrence remember?
# ----------------------------------------------------------------------------------------------


def _memory_input(kind: str, L: int) -> np.ndarray:
    x = np.zeros(L)
    if kind == "impulse":
        x[5] = 1.0
    elif kind == "step":
        x[5:] = 1.0
    elif kind == "noise":
        x = np.random.default_rng(0).standard_normal(L)
    else:
        raise ValueError(f"expected input 'impulse', 'step' or 'noise', got {kind!r}")
    return x


def memory_explorer(a: float = 0.8, kind: str = "impulse", L: int = 80) -> InteractiveFigure:
    """Lesson 00 widget: the decay ``a`` of h_t = a·h_{t−1} + x_t → how long an input is remembered.

    Controls: ``a`` (0 … 0.99), ``input`` (impulse, step, noise). Axes 0 shows the input (line 0)
    and the state h (line 1); the title gives the memory horizon 1/(1 − a).
    """
    _memory_input(kind, L)  # a clear error for an unknown input kind, before any widget exists

    def draw(fig: Figure, a: float, input: str) -> None:
        x = _memory_input(input, L)
        h = sequential_scan(np.full(L, a), x)
        ax = fig.add_subplot()
        ax.plot(x, color="0.6", lw=1, label="input x_t")
        ax.plot(h, color="C0", lw=2, label="state h_t")
        ax.set_xlabel("time step t")
        ax.set_ylabel("input x_t, state h_t")
        ax.set_title(
            f"a = {a:.2f}: an input fades as a^k; memory horizon 1/(1−a) ≈ {1 / (1 - a):.1f} steps"
        )
        ax.legend(loc="upper right")

    controls = {
        "a": W.FloatSlider(
            value=a, min=0.0, max=0.99, step=0.01, description="decay a", continuous_update=False
        ),
        "input": W.Dropdown(options=["impulse", "step", "noise"], value=kind, description="input"),
    }
    return interactive_figure(controls, draw)


# ----------------------------------------------------------------------------------------------
# Lesson 05 — how much of a signal's history does a HiPPO state remember?
# ----------------------------------------------------------------------------------------------

HIPPO_SIGNALS = ("two sines", "square wave", "chirp", "noise")


def _hippo_signal(kind: str, t: np.ndarray) -> np.ndarray:
    if kind == "two sines":
        return np.sin(2 * np.pi * 3 * t) + 0.5 * np.cos(2 * np.pi * 7 * t)
    if kind == "square wave":
        return np.sign(np.sin(2 * np.pi * 4 * t + 0.1))
    if kind == "chirp":
        return np.sin(2 * np.pi * (2 + 10 * t) * t)
    if kind == "noise":
        rng = np.random.default_rng(0)
        return np.convolve(rng.standard_normal(t.size), np.ones(15) / np.sqrt(15), mode="same")
    raise ValueError(f"expected a signal in {HIPPO_SIGNALS}, got {kind!r}")


def hippo_explorer(
    N: int = 16, samples: int = 1000, signal: str = "two sines"
) -> InteractiveFigure:
    """Lesson 05 widget: HiPPO-LegS compresses a whole history into N numbers; how well?

    Controls: ``N`` (state size), ``samples`` (how many steps the unit interval is sampled with, i.e.
    Δ = 1/samples), ``signal``. Axes 0: the signal (line 0) and its reconstruction from the final
    state (line 1); the title gives the RMS error.
    """
    _hippo_signal(signal, np.linspace(0, 1, 4))

    def draw(fig: Figure, N: int, samples: int, signal: str) -> None:
        t = np.linspace(0, 1, samples)
        f = _hippo_signal(signal, t)
        c = ssm.hippo_legs_online(f, N)[-1]
        rec = ssm.legendre_reconstruct(c, samples)
        err = float(np.sqrt(np.mean((rec - f) ** 2)))
        ax = fig.add_subplot()
        ax.plot(t, f, color="0.55", lw=1, label="signal f")
        ax.plot(t, rec, color="C3", lw=2, label=f"from the {N} numbers of the state")
        ax.set_xlabel("time (the state is read at the end, t = 1)")
        ax.set_ylabel("f(t)")
        ax.set_title(f"N = {N}, Δ = 1/{samples}: RMS reconstruction error {err:.3f}")
        ax.legend(loc="lower left", fontsize=8)

    controls = {
        "N": W.IntSlider(
            value=N, min=2, max=64, step=2, description="state N", continuous_update=False
        ),
        "samples": W.SelectionSlider(
            options=[100, 250, 500, 1000, 2000],
            value=samples,
            description="1/Δ",
            continuous_update=False,
        ),
        "signal": W.Dropdown(options=list(HIPPO_SIGNALS), value=signal, description="signal"),
    }
    return interactive_figure(controls, draw)


# ----------------------------------------------------------------------------------------------
# Lesson 04 — the LRU's eigenvalue ring
# ----------------------------------------------------------------------------------------------


def ring_explorer(
    r_min: float = 0.4, r_max: float = 0.9, max_phase: float = np.pi, N: int = 256
) -> InteractiveFigure:
    """Lesson 04 widget: the ring initialization and why γ is needed.

    Controls: ``r_min``, ``r_max``, ``max_phase``. Axes 0: N eigenvalues sampled on the ring (line 0
    is the unit circle, line 1 the samples). Axes 1: the expected state size E‖x_t‖² / E‖Bu‖² over
    time for white-noise input, without γ (line 0: it grows to the LRU paper's Proposition 3 value,
    line 2) and with γ (line 1: it stays at 1). The title gives the median memory horizon 1/(1 − |λ|).
    """

    def draw(fig: Figure, r_min: float, r_max: float, max_phase: float) -> None:
        r_lo, r_hi = min(r_min, r_max - 1e-3), max(r_max, r_min + 1e-3)
        lam = lru.eigenvalues(*lru.ring_init(N, r_lo, min(r_hi, 0.9999), max_phase, rng=0))
        ax0, ax1 = fig.subplots(1, 2, width_ratios=[1, 1.6])
        theta = np.linspace(0, 2 * np.pi, 200)
        ax0.plot(np.cos(theta), np.sin(theta), color="0.6", lw=1, ls="--")
        ax0.plot(lam.real, lam.imag, "o", ms=2.5, alpha=0.7)
        ax0.set_aspect("equal")
        ax0.set_xlabel("Re λ")
        ax0.set_ylabel("Im λ")
        ax0.set_title("sampled λ", fontsize=9)
        t = np.arange(1, 301)
        r2 = np.abs(lam) ** 2
        # E|x_t|² for unit white noise: Σ_{k<t} r^{2k} = (1 − r^{2t})/(1 − r²), averaged over λ;
        # with γ the input is scaled by γ² = 1 − r² in power, which cancels the denominator
        decayed = r2[None, :] ** t[:, None]  # (T, N)
        ax1.semilogy(t, ((1 - decayed) / (1 - r2)).mean(axis=1), color="C3", label="without γ")
        ax1.semilogy(t, (1 - decayed).mean(axis=1), color="C2", label="with γ = √(1−|λ|²)")
        ax1.axhline(
            lru.prop3_expected_norm(r_lo, min(r_hi, 0.9999)),
            color="C3",
            ls=":",
            lw=1,
            label="Prop. 3 limit",
        )
        ax1.set_xlabel("time step t")
        ax1.set_ylabel("E‖x_t‖² / E‖Bu‖²")
        ax1.legend(fontsize=8, loc="lower right")
        horizon = np.median(1 / (1 - np.abs(lam)))
        ax1.set_title(f"median memory horizon 1/(1−|λ|) ≈ {horizon:.0f} steps", fontsize=9)

    controls = {
        "r_min": W.FloatSlider(
            value=r_min, min=0.0, max=0.99, step=0.01, description="r_min", continuous_update=False
        ),
        "r_max": W.FloatSlider(
            value=r_max,
            min=0.1,
            max=0.999,
            step=0.001,
            readout_format=".3f",
            description="r_max",
            continuous_update=False,
        ),
        "max_phase": W.FloatSlider(
            value=max_phase,
            min=0.05,
            max=2 * np.pi,
            step=0.05,
            description="max phase",
            continuous_update=False,
        ),
    }
    return interactive_figure(controls, draw, figsize=(9.0, 3.4))


# ----------------------------------------------------------------------------------------------
# Lesson 03 — Blelloch's scan, one step at a time
# ----------------------------------------------------------------------------------------------


def _span_label(span) -> str:
    """(lo, hi) → "lo–hi" (the composition of steps lo..hi); None (the identity) → "·"."""
    if span is None:
        return "·"
    lo, hi = span
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def _join(left, right):
    """The spans version of the operator: "left's steps, then right's" (identity = None)."""
    if left is None:
        return right
    if right is None:
        return left
    return (left[0], right[1])


def blelloch_timeline(n: int) -> list[tuple[str, list]]:
    """What every position holds after each step of Blelloch's scan on ``n`` positions.

    Returns a list of (caption, spans, pairs, phase): phase is "input", "up d", "clear" or
    "down d" (d the distance between combined positions); spans[i] is (lo, hi), meaning the
    composition of steps lo..hi, or None for the identity; pairs are the (left, right) positions
    combined at that step. Entry 0 is the input; then the up-sweep, clearing the root, the
    down-sweep. Built from :func:`mamba_edu.scan.blelloch_trace` (the same steps the scan runs).
    """
    spans = [(i, i) for i in range(n)]
    timeline = [("input: position i holds step i", list(spans), [], "input")]
    trace = blelloch_trace(n)
    ups = [s for s in trace if s[0] == "up"]
    downs = [s for s in trace if s[0] == "down"]
    for _, d, pairs in ups:
        for left, right in pairs:
            spans[right] = _join(spans[left], spans[right])
        timeline.append((f"up-sweep, d = {d}: right ← left ∘ right", list(spans), pairs, f"up {d}"))
    spans[n - 1] = None
    timeline.append(
        (
            "clear the root: the identity (nothing comes before step 0)",
            list(spans),
            [(n - 1, n - 1)],
            "clear",
        )
    )
    for _, d, pairs in downs:
        for left, right in pairs:
            spans[left], spans[right] = spans[right], _join(spans[right], spans[left])
        timeline.append(
            (
                f"down-sweep, d = {d}: left ← node, right ← node ∘ left",
                list(spans),
                pairs,
                f"down {d}",
            )
        )
    return timeline


def blelloch_stepper(n: int = 8, step: int = 0) -> InteractiveFigure:
    """Lesson 03 widget: step through Blelloch's up-sweep and down-sweep on ``n`` (8 or 16) positions.

    Control: ``step`` (0 = the input … the last down-sweep step). Row k of the figure shows what
    every position holds after step k, as the range of time steps it has composed ("2–5"; "·" is
    the identity). Lines show which positions were combined; the current step's are red. Each
    cell's text has gid ``cell-<row>-<position>``; the current step's lines have color "C3".
    """
    if n not in (4, 8, 16):
        raise ValueError(f"expected n to be 4, 8 or 16 positions, got {n}")
    timeline = blelloch_timeline(n)
    last = len(timeline) - 1
    if not 0 <= step <= last:
        raise ValueError(f"expected step between 0 and {last}, got {step}")

    def draw(fig: Figure, step: int) -> None:
        ax = fig.add_subplot()
        ax.set_xlim(-0.6, n - 0.4)
        ax.set_ylim(last + 0.6, -0.6)
        ax.set_yticks(range(last + 1), [t[3] for t in timeline], fontsize=8)
        ax.set_xticks(range(n))
        ax.set_xlabel("position")
        ax.set_ylabel("step (phase, distance d)")
        for spine in ax.spines.values():
            spine.set_visible(False)
        for row in range(step + 1):
            caption, spans, pairs, phase = timeline[row]
            current = row == step
            colour = "C3" if current else "0.75"
            touched = set()
            if row > 0:
                for left, right in pairs:
                    if phase == "clear":
                        touched.add(right)
                        continue
                    ax.plot([left, right], [row - 1, row], color=colour, lw=1.6 if current else 1)
                    ax.plot([right, right], [row - 1, row], color=colour, lw=1.6 if current else 1)
                    touched.add(right)
                    if phase.startswith("down"):
                        ax.plot(
                            [right, left],
                            [row - 1, row],
                            color=colour,
                            lw=1.6 if current else 1,
                            ls="--",
                        )
                        touched.add(left)
            for i, span in enumerate(spans):
                face = "#ffd9cc" if (current and i in touched) else "#e8eef6"
                ax.text(
                    i,
                    row,
                    _span_label(span),
                    ha="center",
                    va="center",
                    fontsize=7 if n > 8 else 9,
                    gid=f"cell-{row}-{i}",
                    bbox=dict(boxstyle="round,pad=0.25", facecolor=face, edgecolor="0.6"),
                )
        caption = timeline[step][0]
        combines = 0 if timeline[step][3] in ("input", "clear") else len(timeline[step][2])
        ax.set_title(
            f"step {step} of {last}: {caption}  ({combines} combine(s) in parallel)", fontsize=10
        )

    controls = {
        "step": W.IntSlider(
            value=step, min=0, max=last, step=1, description="step", continuous_update=False
        ),
    }
    return interactive_figure(controls, draw, figsize=(8.5, 0.42 * (last + 1) + 1.2))


# ----------------------------------------------------------------------------------------------
# Lesson 01 — how far back does a gradient reach?
# ----------------------------------------------------------------------------------------------


def gradient_explorer(
    radius: float = 0.9, nonlinearity: str = "tanh", L: int = 100, N: int = 32, seed: int = 0
) -> InteractiveFigure:
    """Lesson 01 widget: spectral radius ρ(W), nonlinearity, length → ‖∂h_T/∂h_t‖ and the states.

    A random RNN (N states, one noise input, W Gaussian rescaled to spectral radius ρ) is run on a
    fixed input. Axes 0 (log scale): line 0 is ‖∂h_T/∂h_t‖ against the distance T − t, line 1 the
    theory ρ^(T−t) of the linear network. Axes 1: the first four state units over time (lines 0–3).
    Controls: ``radius`` (0.5 … 1.5), ``nonlinearity`` (tanh, relu, identity), ``L`` (10 … 300).
    """
    rnn._nonlinearity(nonlinearity)
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((N, 1))
    x_all = rng.standard_normal((300, 1))

    def draw(fig: Figure, radius: float, nonlinearity: str, L: int) -> None:
        W = rnn.random_recurrent_matrix(N, radius, seed=seed)
        h = rnn.rnn_forward(x_all[:L], W, U, np.zeros(N), nonlinearity)
        norms = rnn.jacobian_norms(h, W, nonlinearity)[::-1]  # index = distance T − t
        distance = np.arange(L)
        ax, ax_states = fig.subplots(1, 2)
        shown = np.where(norms > 0, norms, np.nan)  # a ReLU path can be cut to exactly 0
        ax.semilogy(distance, shown, color="C0", lw=2, label="‖∂h_T/∂h_t‖ measured")
        ax.semilogy(distance, radius**distance, "k--", lw=1, label="ρ^(T−t) (linear theory)")
        try:
            rate = f"{np.exp(rnn.decay_rate(norms[::-1])):.3f}"
        except ValueError:
            rate = "n/a (the path is cut)"
        ax.set_xlabel("distance T − t (steps back)")
        ax.set_ylabel("‖∂h_T/∂h_t‖ (log scale)")
        ax.set_title(f"ρ = {radius:.2f}, {nonlinearity}: factor per step {rate}", fontsize=10)
        ax.legend(loc="best", fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
        for i in range(min(4, N)):
            ax_states.plot(h[:, i], lw=1)
        if np.max(np.abs(h)) > 10:
            ax_states.set_yscale("symlog")
        ax_states.set_xlabel("time step t")
        ax_states.set_ylabel("h_t[i]")
        ax_states.set_title("four state units h_t[i]", fontsize=10)

    controls = {
        "radius": W.FloatSlider(
            value=radius, min=0.5, max=1.5, step=0.01, description="ρ(W)", continuous_update=False
        ),
        "nonlinearity": W.Dropdown(
            options=list(rnn.NONLINEARITIES), value=nonlinearity, description="φ"
        ),
        "L": W.IntSlider(
            value=L, min=10, max=300, step=10, description="length L", continuous_update=False
        ),
    }
    return interactive_figure(controls, draw, figsize=(9.0, 3.4))


# ----------------------------------------------------------------------------------------------
# Lesson 02 — one eigenvalue of a linear recurrence
# ----------------------------------------------------------------------------------------------


def eigenvalue_explorer(
    magnitude: float = 0.9, phase: float = 0.5, L: int = 60
) -> InteractiveFigure:
    """Lesson 02 widget: an eigenvalue λ = |λ|·e^(iφ) → its place in the plane and its impulse response.

    Axes 0: the complex plane; line 0 the unit circle, line 1 the powers λ^k (the spiral the state
    follows), line 2 the pair λ, λ̄. Axes 1: line 0 the impulse response Re(λ^k), line 1 the
    envelope |λ|^k. The title gives the memory horizon 1/(1 − |λ|). Controls: ``magnitude``
    (0 … 1.05) and ``phase`` (0 … π, radians).
    """

    def draw(fig: Figure, magnitude: float, phase: float) -> None:
        lam = magnitude * np.exp(1j * phase)
        powers = impulse_response(lam, L)
        ax_plane, ax_time = fig.subplots(1, 2, width_ratios=[1, 1.8])
        circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
        ax_plane.plot(circle.real, circle.imag, color="0.6", lw=1)
        ax_plane.plot(powers.real, powers.imag, ".-", color="C1", lw=0.6, ms=3, alpha=0.7)
        ax_plane.plot([lam.real, lam.real], [lam.imag, -lam.imag], "o", color="C0", ms=8)
        ax_plane.set_aspect("equal")
        lim = max(1.15, magnitude * 1.1)
        ax_plane.set_xlim(-lim, lim)
        ax_plane.set_ylim(-lim, lim)
        ax_plane.axhline(0, color="0.85", lw=0.8, zorder=0)
        ax_plane.set_xlabel("Re λ")
        ax_plane.set_ylabel("Im λ")
        ax_plane.set_title("λ, λ̄ and the powers λ^k", fontsize=10)
        k = np.arange(L)
        ax_time.plot(k, powers.real, color="C1", lw=2, label="impulse response Re(λ^k)")
        ax_time.plot(k, np.abs(powers), "k--", lw=1, label="envelope |λ|^k")
        horizon = memory_horizon(lam)
        if np.isfinite(horizon):
            ax_time.axvspan(0, min(horizon, L - 1), color="C0", alpha=0.08)
            title = f"|λ| = {magnitude:.2f}: memory horizon 1/(1−|λ|) ≈ {horizon:.1f} steps"
        elif magnitude > 1.0:
            title = f"|λ| = {magnitude:.2f} > 1: unstable, the response grows like |λ|^k"
        else:
            title = "|λ| = 1: marginal, the response never fades"
        ax_time.set_title(title, fontsize=10)
        ax_time.set_xlabel("steps k after the impulse")
        ax_time.set_ylabel("response")
        ax_time.legend(loc="best", fontsize=8)

    controls = {
        "magnitude": W.FloatSlider(
            value=magnitude,
            min=0.0,
            max=1.05,
            step=0.01,
            description="|λ|",
            continuous_update=False,
        ),
        "phase": W.FloatSlider(
            value=phase,
            min=0.0,
            max=float(np.pi),
            step=0.01,
            description="phase",
            continuous_update=False,
        ),
    }
    return interactive_figure(controls, draw, figsize=(9.0, 3.4))


# ----------------------------------------------------------------------------------------------
# Lesson 06 — what a selective Δ keeps and what it forgets
# ----------------------------------------------------------------------------------------------

# token sequences for the forgetting explorer; a "*" marks the tokens that get the marked Δ
FORGETTING_SEQUENCES = {
    "door code": "the door code is *4 *7 *1 , do not tell anyone",
    "selective copying": "*A . . . *B . . *C . . . . . ? ? ?",
    "topic change": "cats purr and sleep *. *now : dogs bark and run",
}


def _forgetting_tokens(sequence: str) -> tuple[list[str], np.ndarray]:
    if sequence not in FORGETTING_SEQUENCES:
        raise ValueError(
            f"expected a sequence among {sorted(FORGETTING_SEQUENCES)}, got {sequence!r}"
        )
    words = FORGETTING_SEQUENCES[sequence].split()
    return [w.lstrip("*") for w in words], np.array([w.startswith("*") for w in words])


def forgetting_explorer(
    sequence: str = "door code", delta_marked: float = 1.0, delta_other: float = 0.05,
    a: float = -1.0,
) -> InteractiveFigure:  # fmt: skip
    """Lesson 06 widget: a Δ per token → how much of each token the state keeps.

    One state entry x_t = exp(Δ_t a) x_{t−1} + Δ_t u_t. The marked tokens of the chosen sequence
    get Δ = ``delta_marked``, the others ``delta_other`` (what a selective model would compute
    from each token). Axes 0: line 0 the Δ_t of every token. Axes 1: line 0 the weight of every
    token in the final state, M[L−1, s] (:func:`mamba_edu.selective.influence`). Axes 2: the whole
    matrix M[t, s] as a heatmap (log scale). A large Δ resets (earlier tokens drop out), a tiny Δ
    ignores (the token is not written and nothing is forgotten). Controls: ``sequence``,
    ``delta_marked``, ``delta_other`` (log sliders) and the decay ``a``.
    """
    _forgetting_tokens(sequence)  # a clear error for an unknown sequence, before any widget

    def draw(fig: Figure, sequence: str, delta_marked: float, delta_other: float, a: float):
        tokens, marked = _forgetting_tokens(sequence)
        delta = np.where(marked, delta_marked, delta_other)
        M = influence(delta, a)
        grid = fig.add_gridspec(2, 2, width_ratios=[1.3, 1])
        ax_delta = fig.add_subplot(grid[0, 0])
        ax_final = fig.add_subplot(grid[1, 0], sharex=ax_delta)
        ax_map = fig.add_subplot(grid[:, 1])
        positions = np.arange(len(tokens))
        ax_delta.plot(positions, delta, "o-", color="0.5", lw=1, ms=4)
        ax_delta.plot(positions[marked], delta[marked], "o", color="C3", ms=7)
        ax_delta.set_yscale("log")
        ax_delta.set_ylim(5e-5, 2e2)
        ax_delta.set_ylabel("Δ_t")
        ax_delta.set_title("step size per token (red: marked)", fontsize=10)
        ax_delta.tick_params(labelbottom=False)
        final = np.maximum(M[-1], 1e-12)
        ax_final.plot(positions, final, "o-", color="C0", lw=1.5, ms=4)
        ax_final.set_yscale("log")
        ax_final.set_ylim(1e-8, 2e2)
        ax_final.set_ylabel("weight in x_L")
        ax_final.set_xticks(positions, tokens, rotation=60, fontsize=8)
        ax_final.set_xlabel("token s")
        kept = final / final.sum()
        ax_final.set_title(
            f"what the final state holds: {kept[marked].sum():.0%} from the marked tokens",
            fontsize=10,
        )
        shown = np.where(
            np.tril(np.ones_like(M, dtype=bool)), np.log10(np.maximum(M, 1e-8)), np.nan
        )
        image = ax_map.imshow(shown, cmap="viridis", vmin=-8, vmax=2)
        ax_map.set_xticks(positions, tokens, rotation=90, fontsize=7)
        ax_map.set_yticks(positions, tokens, fontsize=7)
        ax_map.set_xlabel("input token s")
        ax_map.set_ylabel("state after token t")
        ax_map.set_title("log10 M[t, s]", fontsize=10)
        fig.colorbar(image, ax=ax_map, shrink=0.7, label="log10 M[t, s]")

    controls = {
        "sequence": W.Dropdown(
            options=list(FORGETTING_SEQUENCES), value=sequence, description="sequence"
        ),
        "delta_marked": W.FloatLogSlider(
            value=delta_marked, base=10, min=-4, max=2, step=0.1, description="Δ marked",
            continuous_update=False,
        ),
        "delta_other": W.FloatLogSlider(
            value=delta_other, base=10, min=-4, max=2, step=0.1, description="Δ other",
            continuous_update=False,
        ),
        "a": W.FloatSlider(
            value=a, min=-4.0, max=-0.1, step=0.1, description="decay a", continuous_update=False
        ),
    }  # fmt: skip
    return interactive_figure(controls, draw, figsize=(10.0, 5.2))


# ----------------------------------------------------------------------------------------------
# Lesson 07 — what a trained Mamba language model's state holds while it writes
# ----------------------------------------------------------------------------------------------


def _layer_deltas(model, tokens):
    """Per layer, the Δ (d_inner, L) and A (d_inner, N) a :class:`mamba_edu.mamba.MambaLM`
    used on tokens (L,): its parameters read in NumPy, the block's steps 1–3 recomputed on the
    input each mixer received (captured by forward pre-hooks on one forward pass)."""
    # torch and the model module load only when this lesson-07 widget is built
    import torch

    from mamba_edu import mamba, selective  # (with torch: lessons 00–06 never load them)

    inputs = []
    hooks = [
        layer.mixer.register_forward_pre_hook(lambda _m, args: inputs.append(args[0]))
        for layer in model.layers
    ]
    try:
        with torch.no_grad():
            model(torch.as_tensor(np.asarray(tokens), dtype=torch.int64)[None])
    finally:
        for hook in hooks:
            hook.remove()
    out = []
    for layer, hidden in zip(model.layers, inputs, strict=True):
        p = mamba.block_parameters(layer.mixer)
        d_inner, dt_rank = layer.mixer.d_inner, layer.mixer.dt_rank
        x = hidden[0].double().numpy() @ p["in_proj.weight"][:d_inner].T  # (L, d_inner)
        if "in_proj.bias" in p:
            x = x + p["in_proj.bias"][:d_inner]
        x = mamba.causal_conv1d_reference(x.T[None], p["conv1d.weight"][:, 0], p["conv1d.bias"])
        x = selective.silu(x[0].T)
        dt_low = (x @ p["x_proj.weight"].T)[:, :dt_rank]
        delta = selective.softplus(dt_low @ p["dt_proj.weight"].T + p["dt_proj.bias"])
        out.append((delta.T, -np.exp(p["A_log"])))
    return out


def generation_explorer(
    model, tokens, chars, kv_bytes_per_token: int, position: int | None = None, layer: int = 0,
    entry: int = 0,
) -> InteractiveFigure:  # fmt: skip
    """Lesson 07 widget: step through a text a :class:`mamba_edu.mamba.MambaLM` wrote.

    ``tokens``: (L,) ids of the text; ``chars``: its L characters (for the labels);
    ``kv_bytes_per_token``: the bytes a Transformer's KV cache adds per position. At ``position``
    t, in layer ``layer`` and for state entry ``entry`` (n): axes 0, line 0: the Δ_s the layer
    used at every position, averaged over its channels. Axes 1, line 0: the weight of each earlier
    character s ≤ t in the state entry n after t — lesson 06's influence
    Δ_s · exp(A_n · (Δ_{s+1} + … + Δ_t)), averaged over channels and normalized to sum to 1.
    Axes 2: bytes of the model's state (line 0, constant) and of the KV cache (line 1) against
    position, a marker at t.
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or len(tokens) < 2 or len(chars) != len(tokens):
        raise ValueError(
            f"expected tokens (L,) with L >= 2 and as many chars, got {tokens.shape} and "
            f"{len(chars)} chars"
        )
    n_layer, d_state = len(model.layers), model.layers[0].mixer.d_state
    if not 0 <= layer < n_layer or not 0 <= entry < d_state:
        raise ValueError(
            f"expected 0 <= layer < {n_layer} and 0 <= entry < {d_state}, got {layer}, {entry}"
        )
    length = len(tokens)
    position = length - 1 if position is None else position
    if not 0 <= position < length:
        raise ValueError(f"expected 0 <= position < {length}, got {position}")
    per_layer = _layer_deltas(model, tokens)
    state_bytes = sum(
        s.numel() * s.element_size() for pair in model.initial_states(1) for s in pair
    )
    labels = [repr(c)[1:-1] for c in chars]

    def draw(fig: Figure, position: int, layer: int, entry: int):
        delta, A = per_layer[layer]  # (d_inner, L), (d_inner, N)
        t = position
        weights = np.mean(
            [influence(delta[c, : t + 1], A[c, entry])[t] for c in range(delta.shape[0])], axis=0
        )
        weights = weights / weights.sum()
        grid = fig.add_gridspec(2, 2, width_ratios=[2, 1])
        ax_delta = fig.add_subplot(grid[0, 0])
        ax_weight = fig.add_subplot(grid[1, 0], sharex=ax_delta)
        ax_mem = fig.add_subplot(grid[:, 1])
        pos = np.arange(length)
        ax_delta.plot(pos, delta.mean(axis=0), "o-", color="C0", ms=3, lw=1)
        ax_delta.axvline(t, color="C3", lw=1)
        ax_delta.set_yscale("log")
        ax_delta.set_ylabel("mean Δ_s over channels")
        ax_delta.set_title(f"layer {layer}: the step size at each character", fontsize=10)
        ax_delta.tick_params(labelbottom=False)
        ax_delta.set_xlabel("position s (characters below)")
        ax_weight.bar(pos[: t + 1], weights, color="C2")
        ax_weight.plot(pos[: t + 1], weights, color="C2", lw=0)  # the data, for tests
        ax_weight.set_ylabel("share in the state")
        ax_weight.set_xlabel("character s")
        ax_weight.set_xticks(pos, labels, fontsize=7)
        ax_weight.set_title(
            f"after {labels[t]!r} (t = {t}): weight of each earlier character in state entry "
            f"n = {entry}",
            fontsize=10,
        )
        seen = pos + 1
        ax_mem.plot(seen, np.full(length, state_bytes), color="C0", label="Mamba state")
        ax_mem.plot(seen, seen * kv_bytes_per_token, color="C1", label="Transformer KV cache")
        ax_mem.plot([t + 1, t + 1], [state_bytes, (t + 1) * kv_bytes_per_token], "o", color="C3")
        ax_mem.set_xlabel("tokens so far")
        ax_mem.set_ylabel("bytes held for the next token")
        ax_mem.set_title("memory while generating", fontsize=10)
        ax_mem.legend(fontsize=8)

    controls = {
        "position": W.IntSlider(value=position, min=0, max=length - 1, description="position",
                                continuous_update=False),
        "layer": W.IntSlider(value=layer, min=0, max=n_layer - 1, description="layer",
                             continuous_update=False),
        "entry": W.IntSlider(value=entry, min=0, max=d_state - 1, description="state entry n",
                             continuous_update=False),
    }  # fmt: skip
    return interactive_figure(controls, draw, figsize=(11.0, 5.2))


# ----------------------------------------------------------------------------------------------
# Lesson 08 — stepping a chunked kernel: what is in fast memory, what crosses to main memory
# ----------------------------------------------------------------------------------------------


def chunked_kernel_trace(
    L: int = 16, chunk: int = 8, threads: int = 2, d_state: int = 4, itemsize: int = 4
) -> list[dict]:
    """What a fused, chunked scan kernel does on one (batch, channel) block, step by step.

    Record k (k = 0 … L) is the situation after k time steps: ``chunk`` and ``thread`` of the
    last step (None at k = 0), ``fused`` and ``naive`` bytes moved to or from main memory so far,
    and ``fast`` (the bytes held in fast memory: the current chunk's inputs and the running
    prefix). The fused kernel reads a chunk's x, Δ, z and B_t, C_t (N each) when it starts the
    chunk (and A, N numbers, once), writes the chunk's y and its last state (the prefix, N
    pairs, saved for the backward) when it ends it. The naive plan moves, per step, the same
    inputs and output plus six state-sized transfers (lesson 08, exercise 1).
    """
    for name, value in (("L", L), ("chunk", chunk), ("threads", threads), ("d_state", d_state)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"expected {name} to be a positive integer, got {value!r}")
    if chunk % threads:
        raise ValueError(f"expected chunk ({chunk}) to be a multiple of threads ({threads})")
    per_step_inputs = 3 + 2 * d_state  # x, Δ, z and B_t, C_t
    per_thread = chunk // threads
    records = [
        dict(
            step=0,
            chunk=None,
            thread=None,
            fused=d_state * itemsize,
            naive=d_state * itemsize,
            fast=0,
        )
    ]
    fused = naive = d_state * itemsize  # A, read once by both
    for t in range(L):
        c, start = t // chunk, (t // chunk) * chunk
        steps_in_chunk = min(chunk, L - start)
        if t == start:  # load the chunk's inputs
            fused += steps_in_chunk * per_step_inputs * itemsize
        if t == start + steps_in_chunk - 1:  # write its outputs and the prefix
            fused += (steps_in_chunk + 2 * d_state) * itemsize
        naive += (per_step_inputs + 1 + 6 * d_state) * itemsize
        fast = (steps_in_chunk * per_step_inputs + 2 * d_state) * itemsize
        records.append(
            dict(
                step=t + 1,
                chunk=c,
                thread=(t - start) // per_thread,
                fused=fused,
                naive=naive,
                fast=fast,
            )
        )
    return records


def chunked_kernel_stepper(
    L: int = 16, chunk: int = 8, threads: int = 2, d_state: int = 4, step: int = 0
) -> InteractiveFigure:
    """Lesson 08 widget: step a chunked, fused scan over one (batch, channel) block.

    Controls: ``step`` (time steps done, 0 … L) and ``chunk`` (steps per chunk: 4, 8 or 16;
    ``threads`` threads share a chunk). Top: the sequence's inputs and outputs by time step,
    coloured by where they are (main memory, fast memory, written), with each step's thread.
    Bottom: bytes moved to or from main memory so far, fused against naive (lines 0 and 1).
    """
    trace0 = chunked_kernel_trace(L, chunk, threads, d_state)  # validates the arguments
    if not 0 <= step <= L:
        raise ValueError(f"expected step between 0 and {L}, got {step}")

    def draw(fig: Figure, step: int, chunk: int) -> None:
        trace = chunked_kernel_trace(L, chunk, threads, d_state)
        now = trace[step]
        top, bottom = fig.subplots(2, 1, height_ratios=[1.1, 1])
        rows = ["x, Δ, z", f"B_t, C_t (N = {d_state})", "y"]
        current = now["chunk"]
        for t in range(L):
            c = t // chunk
            for r in range(3):
                if r == 2:  # a chunk's outputs are written when the chunk ends
                    done = t < (step // chunk) * chunk or step == L
                    colour = "#9fd89f" if done else "#e8eef6"
                else:
                    colour = "#8fb8e8" if c == current else "#e8eef6"
                top.add_patch(_rectangle(t, r, colour, edge="C3" if t == step - 1 else "0.6"))
            if c == current:
                top.text(
                    t + 0.5,
                    -0.35,
                    f"T{(t - c * chunk) // (chunk // threads)}",
                    ha="center",
                    fontsize=7,
                )
        for c in range(1, -(-L // chunk)):
            top.axvline(c * chunk, color="0.2", lw=1.5)
        top.set_xlim(0, L)
        top.set_ylim(3, -0.7)
        top.set_yticks([0.5, 1.5, 2.5], rows, fontsize=8)
        top.set_xlabel("time step t")
        top.set_ylabel("tensor")
        if current is None:
            title = "before the first step: everything is in main memory"
        else:
            title = (
                f"step {step}: chunk {current}, thread T{now['thread']}; fast memory holds "
                f"{now['fast']} B (the chunk's inputs, the running prefix)"
            )
        top.set_title(title, fontsize=9)
        steps = [r["step"] for r in trace[: step + 1]]
        bottom.plot(
            steps,
            [r["fused"] for r in trace[: step + 1]],
            "o-",
            ms=3,
            label="fused, chunked kernel",
        )
        bottom.plot(
            steps,
            [r["naive"] for r in trace[: step + 1]],
            "s-",
            ms=3,
            label="naive (6 state-sized transfers per step)",
        )
        bottom.set_xlim(-0.5, L + 0.5)
        bottom.set_ylim(0, trace[-1]["naive"] * 1.05)
        bottom.set_xlabel("time steps processed")
        bottom.set_ylabel("bytes to/from main memory")
        bottom.legend(fontsize=8, loc="upper left")

    controls = {
        "step": W.IntSlider(
            value=step, min=0, max=L, step=1, description="step", continuous_update=False
        ),
        "chunk": W.Dropdown(
            options=[4, 8, 16], value=chunk if chunk in (4, 8, 16) else 8, description="chunk"
        ),
    }
    del trace0
    return interactive_figure(controls, draw, figsize=(8.5, 5.0))


def _rectangle(t: int, row: int, colour: str, edge: str):
    from matplotlib.patches import Rectangle  # only the kernel stepper draws patches

    return Rectangle((t + 0.05, row + 0.1), 0.9, 0.8, facecolor=colour, edgecolor=edge, lw=1.2)


# ----------------------------------------------------------------------------------------------
# Lesson 09 — the benchmark's results explorer
# ----------------------------------------------------------------------------------------------

EXPLORER_METRICS = ("training loss", "score per seed")
# a row's metric → the axis label of its score (the record says which way is better)
_SCORE_LABELS = {
    "accuracy": "held-out accuracy (higher is better)",
    "bpc": "validation bits per character (lower is better)",
}


def _explorer_rows(record: dict, task: str):
    rows = [row for row in record.get("rows", []) if row["task"] == task]
    if not rows:
        tasks = sorted({row["task"] for row in record.get("rows", [])})
        raise ValueError(f"expected a task of the record, one of {tasks}, got {task!r}")
    return rows


def results_explorer(
    record: dict, task: str | None = None, model: str = "all", metric: str = "training loss",
    budget: float = 1.0,
) -> InteractiveFigure:  # fmt: skip
    """Lesson 09 widget: a benchmark record (``mamba-edu run evaluate``) → learning curves and
    the table row.

    Controls: ``task``; ``model`` ("all" or one family); ``metric``: "training loss" (axes 0: one
    line per model and seed, the loss against training seconds) or "score per seed" (axes 0: one
    line per model, its score for each seed: held-out accuracy, higher is better, or for the
    character LM validation bits per character, lower is better; then the chance level dashed,
    and for the LM the unigram and bigram baselines dotted); ``budget``: the fraction of the
    training time shown, 0.05 … 1 (the loss curves stop there and the title gives each model's
    loss reached at that budget). The title holds the table row of the best model (highest
    accuracy or lowest bpc) among those shown.
    """
    tasks = list(record.get("tasks") or sorted({row["task"] for row in record.get("rows", [])}))
    if not tasks or "runs" not in record:
        raise ValueError("expected a record of `mamba-edu run evaluate` (with tasks, rows, runs)")
    if any(row.get("metric") not in _SCORE_LABELS for row in record["rows"]):
        raise ValueError(
            f"expected every row to name its metric, one of {sorted(_SCORE_LABELS)} (a record "
            "written before metrics were recorded: run `mamba-edu run evaluate` again)"
        )
    task = tasks[0] if task is None else task
    rows = _explorer_rows(record, task)
    models = [row["model"] for row in rows]
    if model != "all" and model not in models:
        raise ValueError(f"expected model 'all' or one of {models}, got {model!r}")
    if metric not in EXPLORER_METRICS:
        raise ValueError(f"expected metric one of {EXPLORER_METRICS}, got {metric!r}")
    if not 0.05 <= budget <= 1.0:
        raise ValueError(
            f"expected budget (a fraction of the training time) in [0.05, 1], got {budget}"
        )
    seeds = record.get("seeds", [0])

    def draw(fig: Figure, task: str, model: str, metric: str, budget: float):
        rows = _explorer_rows(record, task)
        chosen = [r for r in rows if model in ("all", r["model"])] or rows
        kind = chosen[0]["metric"]
        ax = fig.add_subplot()
        if metric == "training loss":
            reached = []
            for i, row in enumerate(chosen):
                for seed in seeds:
                    curve = record["runs"][f"{task} | {row['model']} | seed {seed}"]["curve"]
                    t, loss = np.asarray(curve["seconds"]), np.asarray(curve["loss"])
                    if len(t) == 0:
                        continue
                    keep = t <= budget * t[-1] + 1e-12
                    keep[0] = True  # the first point always, even for a tiny budget
                    ax.plot(t[keep], loss[keep], color=f"C{i}", lw=1.2,
                            label=row["model"] if seed == seeds[0] else None)  # fmt: skip
                    if seed == seeds[0]:
                        reached.append(f"{row['model']} {loss[keep][-1]:.2f}")
            ax.set_xlabel("training time (s, this run's machine)")
            per = "nats per character" if kind == "bpc" else "nats"
            ax.set_ylabel(f"training loss (cross-entropy, {per})")
            ax.set_title(f"{task}: loss at {budget:.0%} of the budget — " + ", ".join(reached),
                         fontsize=9)  # fmt: skip
        else:
            for i, row in enumerate(chosen):
                ax.plot(range(len(row["scores"])), row["scores"], "o-", color=f"C{i}",
                        label=row["model"])  # fmt: skip
            guess = "uniform guess" if kind == "bpc" else "chance"
            ax.axhline(chosen[0]["chance"], color="0.5", ls="--", lw=1, label=guess)
            for name, style in (("unigram_bpc", ":"), ("bigram_bpc", "-.")):
                if name in chosen[0].get("baselines", {}):
                    ax.axhline(chosen[0]["baselines"][name], color="0.3", ls=style, lw=1,
                               label=name.replace("_bpc", ""))  # fmt: skip
            ax.set_xticks(range(len(seeds)), [f"seed {s}" for s in seeds])
            ax.set_xlabel("seed")
            ax.set_ylabel(_SCORE_LABELS[kind], fontsize=8 if kind == "bpc" else None)
            if kind == "accuracy":
                ax.set_ylim(0, 1.05)
            else:
                ax.set_ylim(0, None)
            sign = 1 if chosen[0]["higher_is_better"] else -1
            best = max(chosen, key=lambda r: sign * r["score"])
            ax.set_title(
                f"{task} — {best['model']}: {best['params']} parameters, state {best['state']}, "
                f"{best['steps']} steps, {kind} {best['score']:.3f} "
                f"({best['min_score']:.3f}–{best['max_score']:.3f})",
                fontsize=9,
            )
        ax.legend(fontsize=8, loc="best")

    controls = {
        "task": W.Dropdown(options=tasks, value=task, description="task"),
        "model": W.Dropdown(options=["all", *models], value=model, description="model"),
        "metric": W.Dropdown(options=list(EXPLORER_METRICS), value=metric, description="metric"),
        "budget": W.FloatSlider(value=budget, min=0.05, max=1.0, step=0.05, description="budget",
                                continuous_update=False),
    }  # fmt: skip
    return interactive_figure(controls, draw, figsize=(9.0, 3.6))
