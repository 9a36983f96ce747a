"""Every figure the course draws is readable: each panel says what its axes are and what it shows.

The rule, for every Axes of every figure built by :mod:`mamba_edu.plots` and
:mod:`mamba_edu.widgets` (rendered headless with the Agg backend):

* a chart has an x label and a y label (an x axis shared with a labelled panel counts: the label is
  drawn once, under the stack), and a title or a legend;
* a colorbar has a label (what the colours mean);
* a diagram drawn with its axes switched off (``ax.axis("off")``, e.g. the roadmap) has no axes
  to label: it needs a title.

Builders are discovered, not listed, so a widget or plot added later is covered automatically: a
widget builder is any public function of ``widgets`` that returns an ``InteractiveFigure`` (it must
run with its default arguments, or have sample arguments in ``WIDGET_SAMPLES``); a plot builder is
any public function of ``plots``, and needs sample data in ``PLOT_SAMPLES`` below (the test says so when one is missing). Each widget is also
redrawn at every option of its drop-downs and at both ends of its sliders, because a panel that
appears only for some settings must be labelled too.
"""

from __future__ import annotations

import inspect

import matplotlib

matplotlib.use("Agg")

import ipywidgets as W  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mamba_edu import plots, widgets  # noqa: E402


def axes_problems(fig) -> list[str]:
    """What is missing on each Axes of ``fig``, in words ([] when every panel is readable)."""
    problems = []
    for i, ax in enumerate(fig.axes):
        where = f"axes {i} ({ax.get_title() or 'untitled'!r})"
        colorbar = getattr(ax, "_colorbar", None)
        if colorbar is not None:
            long_axis = ax.yaxis if colorbar.orientation == "vertical" else ax.xaxis
            if not long_axis.get_label_text().strip():
                problems.append(f"{where}: colorbar without a label")
            continue
        titled = any(ax.get_title(loc=loc).strip() for loc in ("left", "center", "right"))
        if not ax.axison:
            if not titled:
                problems.append(f"{where}: a diagram (axes off) without a title")
            continue
        if not _label(ax, "x"):
            problems.append(f"{where}: no x label")
        if not _label(ax, "y"):
            problems.append(f"{where}: no y label")
        if not titled and ax.get_legend() is None:
            problems.append(f"{where}: neither a title nor a legend")
    return problems


def _label(ax, which: str) -> bool:
    get = "get_xlabel" if which == "x" else "get_ylabel"
    if getattr(ax, get)().strip():
        return True
    shared = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    return any(
        getattr(other, get)().strip() for other in shared.get_siblings(ax) if other is not ax
    )


# ------------------------------------------------------------------------------------------------
# the rule itself must be able to fail
# ------------------------------------------------------------------------------------------------


def test_rule_finds_missing_labels_title_and_colorbar_label():
    fig, (ax0, ax1) = plt.subplots(1, 2)
    ax0.plot([0, 1])  # nothing labelled
    image = ax1.imshow(np.eye(3))
    ax1.set_xlabel("s")
    ax1.set_ylabel("t")
    ax1.set_title("M")
    fig.colorbar(image, ax=ax1)
    problems = " | ".join(axes_problems(fig))
    assert "axes 0" in problems and "no x label" in problems and "no y label" in problems
    assert "neither a title nor a legend" in problems
    assert "colorbar without a label" in problems
    plt.close(fig)


def test_rule_accepts_a_labelled_figure_and_a_titled_diagram():
    fig, (ax0, ax1, ax2) = plt.subplots(1, 3)
    ax0.plot([0, 1], label="a line")
    ax0.set_xlabel("t")
    ax0.set_ylabel("h")
    ax0.legend()
    image = ax1.imshow(np.eye(3))
    ax1.set_xlabel("s")
    ax1.set_ylabel("t")
    ax1.set_title("M")
    fig.colorbar(image, ax=ax1, label="log10 M")
    ax2.axis("off")
    ax2.set_title("a diagram")
    assert axes_problems(fig) == []
    ax2.set_title("")
    assert axes_problems(fig) == ["axes 2 ('untitled'): a diagram (axes off) without a title"]
    plt.close(fig)


# ------------------------------------------------------------------------------------------------
# plots: every public builder, with sample data
# ------------------------------------------------------------------------------------------------

_sizes = [64, 128, 256, 512]
PLOT_SAMPLES = {
    "roadmap": lambda: plots.roadmap(),
    "loglog_timings": lambda: plots.loglog_timings(
        _sizes,
        {"a": [1e-3, 2e-3, 4e-3, 8e-3], "b": [1e-3, 4e-3, 1.6e-2, 6.4e-2]},
        slopes={"a": 1.0, "b": 2.0},
        title="timings",
    ),
    "complex_plane": lambda: plots.complex_plane({"λ": np.exp(1j * np.linspace(0, 3, 8)) * 0.9}),
    "work_depth": lambda: plots.work_depth(
        _sizes,
        {"sequential": [n - 1 for n in _sizes]},
        {"sequential": [n - 1 for n in _sizes]},
        title="work and depth",
    ),
    "measured_vs_theory": lambda: plots.measured_vs_theory(
        [-0.1, -0.2], {"measured": [-0.11, -0.19]}, xlabel="theory", ylabel="measured"
    ),
    "loss_curves": lambda: plots.loss_curves({"model": [1.0, 0.5, 0.25]}, title="loss"),
}


def _public_functions(module) -> dict:
    names = set(getattr(module, "__all__", ())) | {
        name
        for name, obj in vars(module).items()
        if inspect.isfunction(obj) and obj.__module__ == module.__name__
    }
    return {
        name: getattr(module, name)
        for name in sorted(names)
        if not name.startswith("_") and inspect.isfunction(getattr(module, name))
    }


PLOT_BUILDERS = sorted(_public_functions(plots))


@pytest.mark.parametrize("name", PLOT_BUILDERS)
def test_plot_builder_labels_every_axes(name):
    assert name in PLOT_SAMPLES, (
        f"plots.{name} is a public plot builder without sample data: add an entry for it to "
        f"PLOT_SAMPLES in {__file__} so that its figure is checked"
    )
    fig = PLOT_SAMPLES[name]()
    try:
        assert axes_problems(fig) == [], f"plots.{name}: {axes_problems(fig)}"
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------------------------
# widgets: every builder, at its defaults and across its controls
# ------------------------------------------------------------------------------------------------


def _widget_builders() -> dict:
    found = {}
    for name, fn in _public_functions(widgets).items():
        returns = inspect.signature(fn).return_annotation
        if (
            returns in ("InteractiveFigure", widgets.InteractiveFigure)
            and name != "interactive_figure"
        ):
            found[name] = fn
    return found


WIDGET_BUILDERS = _widget_builders()


def _tiny_generation():
    """What lesson 07's generation explorer needs: an (untrained) MambaLM and a short text."""
    import torch  # only this widget needs torch and the model module

    from mamba_edu import mamba

    torch.manual_seed(0)
    model = mamba.MambaLM(mamba.MambaConfig(vocab_size=12, d_model=16, n_layer=2, d_state=4))
    text = "state space!"
    return dict(model=model, tokens=np.arange(len(text)), chars=list(text), kv_bytes_per_token=64)


def _stored_evaluation():
    """The quick benchmark record shipped in ``data/`` (``mamba-edu run evaluate --quick``)."""
    import json
    from pathlib import Path

    return dict(
        record=json.loads((Path(__file__).parents[1] / "data/evaluation-quick.json").read_text())
    )


# arguments for the builders that cannot run on their defaults (a trained model, a stored record)
WIDGET_SAMPLES = {"generation_explorer": _tiny_generation, "results_explorer": _stored_evaluation}


def test_every_exported_widget_builder_is_discovered():
    # a builder listed in __all__ but not annotated would otherwise escape the check below
    exported = {
        name
        for name in widgets.__all__
        if inspect.isfunction(getattr(widgets, name))
        and name != "interactive_figure"
        # a function that says it returns something else (e.g. a trace as data) is no builder
        and inspect.signature(getattr(widgets, name)).return_annotation is inspect.Signature.empty
    }
    assert exported <= set(WIDGET_BUILDERS), (
        f"widget builders in widgets.__all__ without a '-> InteractiveFigure' return annotation: "
        f"{sorted(exported - set(WIDGET_BUILDERS))}"
    )
    assert len(WIDGET_BUILDERS) >= 7  # the seven of lessons 00–06 at least


def _settings(control) -> list:
    """The values a control is moved through: every option of a choice, both ends of a slider."""
    if isinstance(control, W.widgets.widget_selection._Selection):
        return list(control.options) if not isinstance(control.options, dict) else []
    if hasattr(control, "min") and hasattr(control, "max"):
        if isinstance(control, W.FloatLogSlider):
            return [control.base**control.min, control.base**control.max]
        return [control.min, control.max]
    return []


@pytest.mark.parametrize("name", sorted(WIDGET_BUILDERS))
def test_widget_labels_every_axes(name):
    required = [
        p.name
        for p in inspect.signature(WIDGET_BUILDERS[name]).parameters.values()
        if p.default is inspect.Parameter.empty
    ]
    assert not required or name in WIDGET_SAMPLES, (
        f"widgets.{name} needs {required}: give it sample arguments in WIDGET_SAMPLES"
    )
    handle = WIDGET_BUILDERS[name](**(WIDGET_SAMPLES[name]() if name in WIDGET_SAMPLES else {}))
    seen = {problem: "the defaults" for problem in axes_problems(handle.figure)}
    defaults = handle.values()
    for control_name, control in handle.controls.items():
        for value in _settings(control):
            if isinstance(value, tuple):  # (label, value) options
                value = value[1]
            # draw without rendering the PNG (what moving the control would also do): the
            # labels are on the Axes already, and skipping the rendering keeps the test cheap
            handle.figure.clear()
            handle.draw(handle.figure, **{**defaults, control_name: value})
            for problem in axes_problems(handle.figure):
                seen.setdefault(problem, f"{control_name} = {value!r}")
    assert not seen, f"widgets.{name}: " + "; ".join(f"{p} (at {w})" for p, w in seen.items())
