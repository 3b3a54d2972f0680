"""The report's plots (matplotlib is optional: pip install "fastmlp[plot]"). Each takes an
experiment's result dict, as stored in results.json, and returns a matplotlib Figure."""

import io
import os

import numpy as np

from ..files import atomic_write
from .settings import CENTER_TARGET, PLOT_NAMES, RAMP_TARGETS


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _errorbar(ax, xs, groups, key, scale=100.0, **kw):
    med = [scale * g["median"][key] for g in groups]
    lo = [scale * min(r[key] for r in g["runs"]) for g in groups]
    hi = [scale * max(r[key] for r in g["runs"]) for g in groups]
    ax.errorbar(xs, med, yerr=[np.subtract(med, lo), np.subtract(hi, med)], marker="o",
                capsize=3, **kw)


def plot_crop(res):
    fig = _figure(9, 3.5)
    ax1, ax2 = fig.subplots(1, 2)
    xs = [g["config"]["crop"] for g in res["groups"]]
    _errorbar(ax1, xs, res["groups"], "test_accuracy_full")
    ax1.set(xlabel="border cropped (pixels)", ylabel="accuracy on all 10,000 (%)",
            title="accuracy (median, min-max over seeds)")
    _errorbar(ax2, xs, res["groups"], "samples_per_second", scale=1e-3, color="C1")
    ax2.set(xlabel="border cropped (pixels)", ylabel="thousand samples / s",
            title="training speed")
    return fig


def plot_center(res):
    fig = _figure(5, 3.5)
    ax = fig.subplots()
    xs = [g["config"]["center"] for g in res["groups"]]
    _errorbar(ax, xs, res["groups"], "test_accuracy_full")
    ax.axhline(100 * CENTER_TARGET, color="grey", linestyle=":", label="claim: 80%")
    ax.set(xlabel="center window (K x K pixels)", ylabel="accuracy on all 10,000 (%)",
           title="only the innermost K x K pixels")
    ax.legend()
    return fig


def plot_batch_ramp(res):
    fig = _figure(6, 4)
    ax = fig.subplots()
    for g in res["groups"]:
        run = g["runs"][0]
        t = np.cumsum([h["seconds"] for h in run["history"]])
        ax.plot(t, [100 * h["val_accuracy"] for h in run["history"]], marker=".",
                label=g["label"])
    for t in RAMP_TARGETS:
        ax.axhline(100 * t, color="grey", linestyle=":", linewidth=0.8)
    ax.set(xlabel="training seconds", ylabel="validation accuracy (%)",
           title=f"validation accuracy over training time (seed {res['groups'][0]['seeds'][0]})")
    lo = min(100 * h["val_accuracy"] for g in res["groups"] for h in g["runs"][0]["history"])
    ax.set_xlim(0, None)
    ax.set_ylim(max(lo - 0.5, 90.0), None)
    ax.legend()
    return fig


def plot_activations(res):
    groups = res["groups"]
    fig = _figure(4 * (len(groups) + 1) * 0.8, 3.5)
    axes = fig.subplots(1, len(groups) + 1)
    for g in groups:
        curve = g["val_curve"]
        axes[0].plot(range(1, len(curve) + 1), [100 * v for v in curve], marker=".",
                     label=g["label"])
    axes[0].set(xlabel="epoch", ylabel="validation accuracy (%)", title="accuracy")
    axes[0].xaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(fontsize="small")
    top = max(max(max(e) for e in g["weight_rms"]) for g in groups)
    for ax, g in zip(axes[1:], groups):
        rms = np.array(g["weight_rms"])
        for l in range(rms.shape[1]):
            ax.plot(range(rms.shape[0]), rms[:, l], label=f"layer {l + 1}")
        ax.set(xlabel="epoch (0 = init)", title=f"{g['label']}: weight RMS", ylim=(0, 1.05 * top))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
    axes[1].set_ylabel("RMS of the weight matrix")
    return fig


def plot_softmax(res):
    d = res["data"]
    fig = _figure(9, 3.5)
    ax1, ax2 = fig.subplots(1, 2)
    for mode, values in d["spreads"].items():
        ax1.hist(values, bins=30, alpha=0.6, label=mode)
    ax1.axvline(d["underflow_threshold"], color="red", linestyle=":",
                label="float32 exp underflow")
    ax1.set(xlabel="largest minus smallest row max within a batch",
            ylabel="batches", title="spread of logits within a batch (x1)")
    ax1.legend(fontsize="small")
    scales = [e["scale"] for e in d["scales"]]
    ax2.plot(scales, [100 * e["naive_fail_fraction"] for e in d["scales"]], marker="o",
             label="batch-max softmax (wrong)")
    ax2.plot(scales, [100 * e["fused_fail_fraction"] for e in d["scales"]], marker="s",
             label="fastmlp kernel (row max)")
    ax2.set_xscale("log", base=2)
    ax2.set(xlabel="logits multiplied by", ylabel="batches with NaN/inf loss (%)",
            title="failures")
    ax2.legend(fontsize="small")
    return fig


PLOTS = {"crop": plot_crop, "center": plot_center, "batch_ramp": plot_batch_ramp,
         "activations": plot_activations, "softmax": plot_softmax}


def matplotlib_available():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_plots(results, out):
    """Draw every plot whose experiment is in ``results`` into ``out``; returns {name: file}
    (empty, with a note in results, when matplotlib is missing)."""
    if not matplotlib_available():
        results["plots"] = dict(available=False, note="matplotlib is not installed, so no plots "
                                "were drawn: pip install 'fastmlp[plot]' and rerun")
        return {}
    written = {}
    for name, plot in PLOTS.items():
        res = results["experiments"].get(name)
        if not res or res.get("verdict") == "skipped" or not res.get("groups"):
            continue
        fig = plot(res)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        atomic_write(os.path.join(out, PLOT_NAMES[name]), lambda f: f.write(buf.getvalue()))
        written[name] = PLOT_NAMES[name]
    results["plots"] = dict(available=True, files=written)
    return written

