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
        ax.set_title(f"ρ = {radius:.2f}, {nonlinearity}: factor per step {rate}", fontsize=10)
        ax.legend(loc="best", fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
        for i in range(min(4, N)):
            ax_states.plot(h[:, i], lw=1)
        if np.max(np.abs(h)) > 10:
            ax_states.set_yscale("symlog")
        ax_states.set_xlabel("time step t")
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
        fig.colorbar(image, ax=ax_map, shrink=0.7)

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
